"""Top-k gene neighbourhoods from an embedding or a network, their overlap, and precision against modules.

A neighbourhood table is a DataFrame indexed by gene with columns 1..k holding the neighbour
names, nearest first; the gene itself is never its own neighbour.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from deepexpr.errors import InputError


def _table(genes: pd.Index, order: np.ndarray) -> pd.DataFrame:
    names = np.asarray(genes, dtype=object)[order]
    return pd.DataFrame(names, index=genes.copy(), columns=range(1, order.shape[1] + 1))


def _check_k(k: int, n_genes: int) -> None:
    if not 1 <= k < n_genes:
        raise InputError("k", f"expected 1 <= k < number of genes ({n_genes}), got {k}")


def embedding_neighbours(embedding: pd.DataFrame, k: int = 20) -> pd.DataFrame:
    """The k genes nearest each gene in Euclidean distance of its embedding row (siVAE's v, loadings)."""
    _check_k(k, len(embedding))
    values = np.asarray(embedding, dtype=np.float64)
    # k + 1 because every gene is its own nearest point; drop that column (ties: drop self wherever it is).
    _, order = NearestNeighbors(n_neighbors=k + 1).fit(values).kneighbors(values)
    own = np.arange(len(values))[:, None]
    order = np.array([row[row != i][:k] for row, i in zip(order, own[:, 0])])
    return _table(pd.Index(embedding.index), order)


def network_neighbours(network: pd.DataFrame, k: int = 20) -> pd.DataFrame:
    """The k genes with the largest edge weight to each gene (a symmetric genes x genes weight matrix)."""
    _check_k(k, len(network))
    weights = np.array(network, dtype=np.float64)
    np.fill_diagonal(weights, -np.inf)
    order = np.argsort(-weights, axis=1, kind="stable")[:, :k]
    return _table(pd.Index(network.index), order)


def neighbourhood_jaccard(a: pd.DataFrame, b: pd.DataFrame, k: int | None = None) -> pd.Series:
    """Per gene, Jaccard index of its top-k neighbours in ``a`` and in ``b`` (k = the smaller table's)."""
    genes = a.index.intersection(b.index)
    k = k or min(a.shape[1], b.shape[1])
    values = []
    for gene in genes:
        left, right = set(a.loc[gene].iloc[:k]), set(b.loc[gene].iloc[:k])
        values.append(len(left & right) / len(left | right))
    return pd.Series(values, index=genes, name=f"jaccard@{k}")


def neighbourhood_precision(neighbours: pd.DataFrame, module: pd.Series, k: int | None = None) -> pd.Series:
    """Per module gene, the fraction of its top-k neighbours in the same module (precision@k).

    ``module`` maps gene -> module id with -1 (or any negative) for genes in no module; genes
    outside modules have no defined precision and are left out.
    """
    k = k or neighbours.shape[1]
    module = pd.Series(module)
    in_module = module[module >= 0].index.intersection(neighbours.index)
    if len(in_module) == 0:
        raise InputError("module", "no gene of the neighbourhood table belongs to a module")
    top = neighbours.loc[in_module].iloc[:, :k]
    same = top.apply(lambda col: col.map(module).to_numpy() == module.loc[in_module].to_numpy())
    return same.mean(axis=1).rename(f"precision@{k}")
