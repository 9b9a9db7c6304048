"""GENEX: conditional-WGAN batch correction.

:class:`GENEX` (:mod:`.model`) is the user-facing model, :mod:`.module` the torch network,
:mod:`.settings` the switches and per-mode defaults, :mod:`.anchors` the mutual-nearest-neighbour pairs.
"""

from deepexpr.models.genex.model import GENEX

__all__ = ["GENEX"]
