"""Leiden on a kNN graph with a resolution chosen without labels, shared by scIMTA's number of
clusters (C6) and the Leiden-on-PCA / Leiden-on-scVI comparators.

The label-free criterion: the resolution whose clusters have the highest mean silhouette on the
embedding (ties: the lower resolution). Silhouette on a seeded subsample of at most
:data:`SILHOUETTE_CELLS` cells keeps it O(1) in N.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

SILHOUETTE_CELLS = 5000


def leiden(graph: sp.spmatrix, resolution: float, seed: int = 0) -> np.ndarray:
    """Leiden (RB modularity, leidenalg) labels of an undirected graph."""
    import igraph
    import leidenalg

    upper = sp.triu(sp.csr_matrix(graph), k=1).tocoo()
    network = igraph.Graph(n=graph.shape[0], edges=list(zip(upper.row.tolist(), upper.col.tolist())))
    partition = leidenalg.find_partition(
        network,
        leidenalg.RBConfigurationVertexPartition,
        weights=upper.data.tolist(),
        resolution_parameter=float(resolution),
        seed=seed,
    )
    return np.asarray(partition.membership, dtype=np.int64)


def silhouette(embedding: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Mean silhouette (Euclidean) on a seeded subsample; -1 for a single cluster."""
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2:
        return -1.0
    return float(
        silhouette_score(embedding, labels, sample_size=min(SILHOUETTE_CELLS, len(labels)), random_state=seed)
    )


def resolution_scan(embedding: np.ndarray, graph: sp.spmatrix, resolutions, seed: int = 0) -> list[dict]:
    """Leiden at every resolution: labels, number of clusters and silhouette on ``embedding``."""
    rows = []
    for resolution in resolutions:
        labels = leiden(graph, resolution, seed)
        rows.append(
            {
                "resolution": float(resolution),
                "labels": labels,
                "n_clusters": int(labels.max() + 1),
                "silhouette": silhouette(embedding, labels, seed),
            }
        )
    return rows


def label_free_choice(scan: list[dict]) -> dict:
    """The scan row with the best silhouette (first = lowest resolution on ties)."""
    return max(scan, key=lambda row: row["silhouette"])
