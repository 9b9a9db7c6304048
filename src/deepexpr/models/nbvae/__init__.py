"""NB-VAE: negative-binomial VAE for bulk counts and generative differential expression.

:class:`NBVAE` (:mod:`.model`) is the user-facing model, :mod:`.module` the torch network and its
likelihood, :mod:`.settings` the switches and per-mode defaults; the DE statistics are in
:mod:`deepexpr.de.generative`.
"""

from deepexpr.models.nbvae.model import NBVAE

__all__ = ["NBVAE"]
