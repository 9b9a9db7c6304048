"""Gene-side analyses shared by the interpretable models: neighbourhoods, hub scores, gene networks.

Every function takes plain arrays or DataFrames indexed by gene, so siVAE's gene embedding, an
LDVAE loading matrix (:mod:`.loadings`) and a correlation or mutual-information network are analysed the same way.
"""

from deepexpr.genes.hubs import hub_auroc, norm_hub_score, reconstruction_hub_score, weighted_degree
from deepexpr.genes.loadings import attribution_loadings, ldvae_loadings, loading_agreement
from deepexpr.genes.neighbourhoods import (
    embedding_neighbours,
    neighbourhood_jaccard,
    neighbourhood_precision,
    network_neighbours,
)
from deepexpr.genes.networks import clr, correlation_network, mutual_information_network

__all__ = [
    "attribution_loadings",
    "clr",
    "correlation_network",
    "embedding_neighbours",
    "hub_auroc",
    "ldvae_loadings",
    "loading_agreement",
    "mutual_information_network",
    "neighbourhood_jaccard",
    "neighbourhood_precision",
    "network_neighbours",
    "norm_hub_score",
    "reconstruction_hub_score",
    "weighted_degree",
]
