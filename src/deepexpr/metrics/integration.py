"""scIB batch-correction metrics: which scores, their aggregation, the exact kNN they run on (docs/evaluation.md).

The scIB numbers come from scib-metrics' ``Benchmarker`` with three choices of ours: exact kNN
(sklearn, instead of pynndescent whose numba compilation alone costs about a minute on a small CPU
machine), Leiden NMI/ARI optimised over resolutions (as the original tables), and the classic
batch silhouette (silB) computed beside BRAS, the Benchmarker's default batch score since 0.5.6.
``total`` uses silB (comparable with the [orig] tables), ``total_bras`` uses BRAS (what the
Benchmarker itself reports). No min-max scaling.

:mod:`deepexpr.evaluate.integration` scores the runs of a dataset with them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BIO_METRICS = ["isolated_labels", "nmi", "ari", "silhouette_label", "clisi"]
BATCH_METRICS = ["silhouette_batch", "ilisi", "kbet", "graph_connectivity", "pcr_comparison"]
BATCH_METRICS_BRAS = ["bras", "ilisi", "kbet", "graph_connectivity", "pcr_comparison"]

#: Column order of scib.tsv.
SCIB_COLUMNS = [
    "run",
    "method",
    "mode",
    "seed",
    "isolated_labels",
    "nmi",
    "ari",
    "silhouette_label",
    "clisi",
    "silhouette_batch",
    "bras",
    "ilisi",
    "kbet",
    "graph_connectivity",
    "pcr_comparison",
    "bio_conservation",
    "batch_correction",
    "total",
    "batch_correction_bras",
    "total_bras",
]

#: scib-metrics result names -> scib.tsv columns.
BENCHMARKER_NAMES = {
    "isolated_labels": "isolated_labels",
    "nmi_ari_cluster_labels_leiden_nmi": "nmi",
    "nmi_ari_cluster_labels_leiden_ari": "ari",
    "silhouette_label": "silhouette_label",
    "clisi_knn": "clisi",
    "bras": "bras",
    "ilisi_knn": "ilisi",
    "kbet_per_label": "kbet",
    "graph_connectivity": "graph_connectivity",
    "pcr_comparison": "pcr_comparison",
}


def exact_neighbors(X: np.ndarray, n_neighbors: int, **_approximate_search_options):
    """Exact Euclidean kNN (self included) as scib-metrics' NeighborsResults.

    Also stands in for scib-metrics' pynndescent (whose extra options it ignores).
    """
    from scib_metrics.nearest_neighbors import NeighborsResults
    from sklearn.neighbors import NearestNeighbors

    n_neighbors = min(n_neighbors, X.shape[0])
    distances, indices = NearestNeighbors(n_neighbors=n_neighbors).fit(X).kneighbors(X)
    return NeighborsResults(indices=indices, distances=distances)


def add_aggregates(table: pd.DataFrame) -> pd.DataFrame:
    """Bio, batch and total scores (classic silB and BRAS variants) from the metric columns."""
    table = table.copy()
    table["bio_conservation"] = table[BIO_METRICS].mean(axis=1)
    table["batch_correction"] = table[BATCH_METRICS].mean(axis=1)
    table["total"] = 0.6 * table["bio_conservation"] + 0.4 * table["batch_correction"]
    table["batch_correction_bras"] = table[BATCH_METRICS_BRAS].mean(axis=1)
    table["total_bras"] = 0.6 * table["bio_conservation"] + 0.4 * table["batch_correction_bras"]
    return table
