"""Gene-side analyses shared by the interpretable models.

- Embeddings: reading and writing them (TSV, word2vec text) and the baseline embeddings (random,
  SVD, co-expression) a learned gene embedding is compared with (:mod:`.embeddings`).
- Neighbourhoods, hub scores and gene networks: every function takes plain arrays or DataFrames
  indexed by gene, so siVAE's gene embedding, an LDVAE loading matrix (:mod:`.loadings`) and a
  correlation or mutual-information network are analysed the same way.
"""

from deepexpr.genes.embeddings import (
    coexpression_embedding,
    random_embedding,
    read_embedding,
    read_word2vec,
    svd_embedding,
    write_embedding,
    write_word2vec,
)
from deepexpr.genes.hubs import (
    hub_auroc,
    loading_norm_hub_score,
    norm_hub_score,
    reconstruction_hub_score,
    weighted_degree,
)
from deepexpr.genes.loadings import (
    attribution_loadings,
    ldvae_loadings,
    loading_agreement,
    matched_loading_agreement,
    pca_loadings,
)
from deepexpr.genes.neighbourhoods import (
    embedding_neighbours,
    neighbourhood_jaccard,
    neighbourhood_precision,
    network_neighbours,
)
from deepexpr.genes.networks import clr, correlation_network, mutual_information_network
from deepexpr.genes.tables import read_gene_table, write_gene_table

__all__ = [
    "attribution_loadings",
    "clr",
    "coexpression_embedding",
    "correlation_network",
    "embedding_neighbours",
    "hub_auroc",
    "ldvae_loadings",
    "loading_norm_hub_score",
    "loading_agreement",
    "matched_loading_agreement",
    "mutual_information_network",
    "neighbourhood_jaccard",
    "neighbourhood_precision",
    "network_neighbours",
    "norm_hub_score",
    "pca_loadings",
    "random_embedding",
    "read_embedding",
    "read_gene_table",
    "read_word2vec",
    "reconstruction_hub_score",
    "svd_embedding",
    "weighted_degree",
    "write_embedding",
    "write_gene_table",
    "write_word2vec",
]
