"""GeneRAIN: GPT / BERT transformers on Binning-By-Gene expression and their gene embeddings.

:class:`GeneRAIN` (:mod:`.model`) is the user-facing model, :mod:`.module` the torch network,
:mod:`.settings` the switches and per-mode defaults; the data side is :mod:`deepexpr.data.archs4`.
"""

from deepexpr.models.generain.model import GeneRAIN

__all__ = ["GeneRAIN"]
