"""Gene-side analyses shared by the interpretable models: neighbourhoods, hub scores, gene networks.

Every function takes plain arrays or DataFrames indexed by gene, so siVAE's gene embedding, an
LDVAE loading matrix and a correlation or mutual-information network are analysed the same way.
"""

from deepexpr.genes.hubs import hub_auroc, norm_hub_score, reconstruction_hub_score, weighted_degree
from deepexpr.genes.neighbourhoods import (
    embedding_neighbours,
    neighbourhood_jaccard,
    neighbourhood_precision,
    network_neighbours,
)
from deepexpr.genes.networks import clr, correlation_network, mutual_information_network

__all__ = [
    "clr",
    "correlation_network",
    "embedding_neighbours",
    "hub_auroc",
    "mutual_information_network",
    "neighbourhood_jaccard",
    "neighbourhood_precision",
    "network_neighbours",
    "norm_hub_score",
    "reconstruction_hub_score",
    "weighted_degree",
]
