"""GENEX: conditional-WGAN batch correction (:class:`GENEX`; network in :mod:`.module`, settings in :mod:`.settings`)."""

from deepexpr.models.genex.model import GENEX

__all__ = ["GENEX"]
