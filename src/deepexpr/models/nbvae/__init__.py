"""NB-VAE: negative-binomial VAE for bulk counts (:class:`NBVAE`; network in :mod:`.module`, settings in :mod:`.settings`)."""

from deepexpr.models.nbvae.model import NBVAE

__all__ = ["NBVAE"]
