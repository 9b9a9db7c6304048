"""siVAE: interpretable cell and gene embeddings (cell VAE + feature VAE combined in the output layer).

:class:`SIVAE` (:mod:`.model`) is the user-facing model, :mod:`.module` the torch network and
its likelihoods, :mod:`.settings` the switches and per-mode defaults.
"""

from deepexpr.models.sivae.model import SIVAE

__all__ = ["SIVAE"]
