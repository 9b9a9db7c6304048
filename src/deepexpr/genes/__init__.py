"""Gene embeddings: reading and writing them (TSV, word2vec text) and the baseline embeddings."""

from deepexpr.genes.embeddings import (
    coexpression_embedding,
    random_embedding,
    read_embedding,
    read_word2vec,
    svd_embedding,
    write_embedding,
    write_word2vec,
)

__all__ = [
    "coexpression_embedding",
    "random_embedding",
    "read_embedding",
    "read_word2vec",
    "svd_embedding",
    "write_embedding",
    "write_word2vec",
]
