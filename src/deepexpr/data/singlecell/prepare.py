"""From raw single-cell counts to the prepared AnnData: validation, QC, normalisation, HVGs, labels.

Follows GENEX's preprocessing (docs/models/genex.md): filter_cells(min_genes), filter_genes(min_cells),
normalize_total + log1p on all genes, seurat_v3 highly variable genes on the counts with the batch
key, subset to the HVGs. Data without cell types (the COVID subset) can be labelled by Leiden
clusters scored against PBMC marker genes. Every data error is raised before anything is computed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepexpr import __version__
from deepexpr.data.singlecell.read import STANDARD_OBS, check_counts
from deepexpr.errors import InputError

logger = logging.getLogger(__name__)

#: Settings and defaults; the config schema (singlecell_normalize) uses the same names.
NORMALIZE_DEFAULTS: dict = {
    "min_genes": 200,
    "min_cells": 3,
    "max_pct_mito": None,
    "n_top_genes": 2000,
    "min_cells_per_batch": 20,
    "max_cells": None,
    "target_sum": 1e4,
    "label_cells": None,
    "leiden_resolution": 1.0,
}
UNASSIGNED = "unassigned"
N_NEIGHBORS = 15
N_PCS = 50


def _first(values, n: int = 5) -> list:
    return list(values)[:n]


def _counts(adata: ad.AnnData):
    return adata.layers["counts"] if "counts" in adata.layers else adata.X


def _check_batches(batch: pd.Series, source, batch_key: str, min_cells_per_batch: int, stage: str) -> None:
    sizes = batch.value_counts(sort=False)
    sizes = sizes[sizes > 0]
    if len(sizes) < 2:
        found = f"only {sizes.index[0]!r}" if len(sizes) else "no cells"
        raise InputError(
            source, f"{stage}: at least 2 batches are needed for batch correction; column {batch_key!r} has {found}"
        )
    small = sizes[sizes < min_cells_per_batch]
    if len(small):
        name, count = small.index[0], int(small.iloc[0])
        others = ", ".join(f"{b!r} ({int(n)})" for b, n in small.iloc[1:].items())
        raise InputError(
            source,
            f"{stage}: batch {name!r} has {count} cells; the minimum is {min_cells_per_batch} (min_cells_per_batch)"
            + (f"; also below: {others}" if others else ""),
        )


def validate_singlecell(
    adata: ad.AnnData,
    source,
    batch_key: str = "batch",
    min_cells_per_batch: int = NORMALIZE_DEFAULTS["min_cells_per_batch"],
) -> None:
    """Reject data that cannot be batch-corrected: no batch column, one batch, tiny batches, bad counts."""
    if batch_key not in adata.obs.columns:
        raise InputError(source, f"missing batch column {batch_key!r}; obs columns are {list(adata.obs.columns)}")
    batch = adata.obs[batch_key]
    missing = batch.isna() | (batch.astype(str) == "")
    if missing.any():
        raise InputError(
            source, f"column {batch_key!r} is empty for {int(missing.sum())} cells, e.g. {_first(adata.obs_names[missing.to_numpy()], 3)}"
        )
    counts = _counts(adata)
    values = counts.data if sp.issparse(counts) else np.asarray(counts)
    bad = ~np.isfinite(values)
    if bad.any():
        coo = sp.coo_matrix(counts) if sp.issparse(counts) else None
        rows, cols = (coo.row[~np.isfinite(coo.data)], coo.col[~np.isfinite(coo.data)]) if coo is not None else np.nonzero(bad)
        raise InputError(
            source,
            f"{int(bad.sum())} non-finite values (NaN or infinite) in the counts, in {np.unique(rows).size} cells and "
            f"{np.unique(cols).size} genes, e.g. cell {adata.obs_names[rows[0]]!r}, gene {adata.var_names[cols[0]]!r}",
        )
    check_counts(counts, source)
    _check_batches(batch.astype(str), source, batch_key, min_cells_per_batch, "before QC")


def resolve_settings(settings: Mapping | None) -> dict:
    """Defaults overlaid with ``settings``; an unknown key raises InputError naming it."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(NORMALIZE_DEFAULTS))
    if unknown:
        raise InputError(f"normalize.{unknown[0]}", f"unknown setting(s) {unknown}; known: {sorted(NORMALIZE_DEFAULTS)}")
    resolved = {**NORMALIZE_DEFAULTS, **settings}
    if resolved["label_cells"] not in (None, "markers"):
        raise InputError("normalize.label_cells", f"expected null or 'markers', got {resolved['label_cells']!r}")
    return resolved


def stratified_subsample(batch: pd.Series, max_cells: int, seed: int) -> np.ndarray:
    """Sorted positions of a seeded subsample of ``max_cells`` cells, batches kept in proportion."""
    codes, levels = pd.factorize(batch.astype(str), sort=True)
    sizes = np.bincount(codes, minlength=len(levels))
    if max_cells >= sizes.sum():
        return np.arange(sizes.sum())
    exact = sizes * max_cells / sizes.sum()
    quota = np.floor(exact).astype(int)
    # Largest remainders get the cells left over after flooring (ties: earlier batch).
    quota[np.argsort(-(exact - quota), kind="stable")[: max_cells - quota.sum()]] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(codes == k), size=q, replace=False) for k, q in enumerate(quota)]
    return np.sort(np.concatenate(chosen))


def _mito_mask(var_names: pd.Index) -> np.ndarray:
    return np.asarray(var_names.str.upper().str.startswith("MT-"), dtype=bool)


def prepare_singlecell(
    adata: ad.AnnData,
    settings: Mapping | None,
    dataset: str,
    seed: int,
    source,
    markers: pd.DataFrame | None = None,
) -> ad.AnnData:
    """QC, normalise, select HVGs (and label cells by markers) per the prepared.h5ad contract."""
    import scanpy as sc

    settings = resolve_settings(settings)
    validate_singlecell(adata, source, min_cells_per_batch=settings["min_cells_per_batch"])
    if settings["label_cells"] == "markers" and markers is None:
        raise InputError("normalize.label_cells", "'markers' needs a marker table (resources/markers/pbmc_markers.tsv)")
    n_cells_in, n_genes_in = adata.n_obs, adata.n_vars
    obs = adata.obs[[c for c in adata.obs.columns if c in STANDARD_OBS]].copy()
    for column in obs.columns:
        obs[column] = pd.Categorical(obs[column].astype(str))
    data = ad.AnnData(X=sp.csr_matrix(_counts(adata), dtype=np.float32), obs=obs, var=adata.var.copy())

    if settings["max_cells"] is not None and data.n_obs > settings["max_cells"]:
        keep = stratified_subsample(data.obs["batch"], int(settings["max_cells"]), seed)
        logger.info("subsampled %d of %d cells (seed %d, stratified by batch)", keep.size, data.n_obs, seed)
        data = data[keep].copy()

    if settings["max_pct_mito"] is not None:
        mito = _mito_mask(data.var_names)
        total = np.asarray(data.X.sum(axis=1)).ravel()
        pct = 100 * np.asarray(data.X[:, mito].sum(axis=1)).ravel() / np.maximum(total, 1)
        keep = pct <= settings["max_pct_mito"]
        logger.info("max_pct_mito %s: %d mitochondrial genes, %d cells dropped", settings["max_pct_mito"], mito.sum(), (~keep).sum())
        data = data[keep].copy()
    sc.pp.filter_cells(data, min_genes=settings["min_genes"])
    sc.pp.filter_genes(data, min_cells=settings["min_cells"])
    logger.info("QC kept %d of %d cells and %d of %d genes", data.n_obs, n_cells_in, data.n_vars, n_genes_in)
    if data.n_vars == 0:
        raise InputError(source, f"no gene is detected in >= {settings['min_cells']} cells after QC")
    _check_batches(data.obs["batch"].astype(str), source, "batch", settings["min_cells_per_batch"], "after QC")
    for column in data.obs.columns:
        if isinstance(data.obs[column].dtype, pd.CategoricalDtype):
            data.obs[column] = data.obs[column].cat.remove_unused_categories()

    data.obs["n_counts"] = np.asarray(data.X.sum(axis=1)).ravel().astype(np.float64)
    data.obs["n_genes"] = np.asarray((data.X > 0).sum(axis=1)).ravel().astype(np.int64)
    data.obs = data.obs.drop(columns=[c for c in data.obs.columns if c not in (*STANDARD_OBS, "n_counts", "n_genes")])
    data.layers["counts"] = data.X.copy()
    sc.pp.normalize_total(data, target_sum=float(settings["target_sum"]))
    sc.pp.log1p(data)
    data.uns.pop("log1p", None)
    n_top = min(int(settings["n_top_genes"]), data.n_vars)
    sc.pp.highly_variable_genes(data, flavor="seurat_v3", n_top_genes=n_top, layer="counts", batch_key="batch")
    hvg = data.var["highly_variable"].to_numpy()

    labels = None
    if settings["label_cells"] == "markers":
        labels = label_by_markers(data, hvg, markers, settings["leiden_resolution"], seed)
        if "cell_type" in obs.columns:
            logger.warning("label_cells markers: replacing the given cell_type column with marker labels")
    prepared = data[:, hvg].copy()
    prepared.X = sp.csr_matrix(prepared.X, dtype=np.float32)
    prepared.layers["counts"] = sp.csr_matrix(prepared.layers["counts"], dtype=np.float32)
    prepared.var = prepared.var.drop(columns=[c for c in ("n_cells",) if c in prepared.var.columns])
    prepared.uns.pop("hvg", None)
    if labels is not None:
        cluster, cell_type, table = labels
        prepared.obs["cluster"] = cluster
        prepared.obs["cell_type"] = cell_type

    provenance = dict(adata.uns.get("deepexpr", {}))
    provenance.update(
        {
            "dataset": dataset,
            "seed": int(seed),
            "package_version": __version__,
            "normalize": {
                "source": str(source),
                "settings": settings,
                "n_cells_in": int(n_cells_in),
                "n_cells_out": int(prepared.n_obs),
                "n_genes_in": int(n_genes_in),
                "n_genes_out": int(prepared.n_vars),
                "n_genes_after_qc": int(data.n_vars),
                "cells_per_batch": {str(k): int(v) for k, v in prepared.obs["batch"].value_counts(sort=False).items()},
            },
        }
    )
    if labels is not None:
        provenance["cell_labels"] = table
    prepared.uns["deepexpr"] = provenance
    logger.info("prepared %d cells x %d HVGs", prepared.n_obs, prepared.n_vars)
    return prepared


def label_by_markers(
    data: ad.AnnData, hvg: np.ndarray, markers: pd.DataFrame, resolution: float, seed: int
) -> tuple[pd.Categorical, pd.Categorical, dict]:
    """Leiden clusters on scaled HVGs, each named after the marker set with the highest mean z-score.

    ``data.X`` is log-normalised expression of all genes. A marker's z-score is taken over all
    cells; a cluster's score for a cell type is the mean over that type's markers present in the
    data of the cluster mean z-score. A cluster whose best score is <= 0 stays "unassigned".
    Returns (cluster per cell, label per cell, audit table for uns).
    """
    import scanpy as sc

    missing_columns = [c for c in ("cell_type", "gene") if c not in markers.columns]
    if missing_columns:
        raise InputError("markers", f"marker table lacks column(s) {missing_columns}; columns are {list(markers.columns)}")
    by_symbol = pd.Series(np.arange(data.n_vars), index=data.var_names.str.upper())
    by_symbol = by_symbol[~by_symbol.index.duplicated()]
    present = markers["gene"].astype(str).str.upper().isin(by_symbol.index)
    if not present.any():
        raise InputError("markers", f"none of the {len(markers)} marker genes is among the {data.n_vars} genes of the data")
    skipped = sorted(markers.loc[~present, "gene"].astype(str))
    if skipped:
        logger.info("markers absent from the data, skipped: %s", skipped)

    hv = data[:, hvg].copy()
    hv.X = hv.X.toarray() if sp.issparse(hv.X) else np.asarray(hv.X)  # scaling densifies anyway
    sc.pp.scale(hv, max_value=10)
    n_comps = min(N_PCS, hv.n_obs - 1, hv.n_vars - 1)
    sc.tl.pca(hv, n_comps=n_comps, random_state=seed)
    # Gaussian-kernel kNN weights: the communities are what matters here, and unlike the default UMAP
    # weights they need no numba compilation (seconds per process).
    sc.pp.neighbors(hv, n_neighbors=N_NEIGHBORS, n_pcs=n_comps, method="gauss", random_state=seed)
    sc.tl.leiden(hv, resolution=resolution, random_state=seed, flavor="igraph", n_iterations=2, directed=False)
    cluster = hv.obs["leiden"].astype(str).to_numpy()
    clusters = sorted(set(cluster), key=int)

    used = markers[present]
    genes = by_symbol[used["gene"].astype(str).str.upper().unique()]
    expression = data.X[:, genes.to_numpy()]
    expression = expression.toarray() if sp.issparse(expression) else np.asarray(expression)
    std = expression.std(axis=0)
    z = pd.DataFrame(
        (expression - expression.mean(axis=0)) / np.where(std > 0, std, 1.0), columns=genes.index
    )
    cluster_means = z.groupby(cluster).mean().loc[clusters]
    cell_types = list(dict.fromkeys(used["cell_type"].astype(str)))
    scores = np.column_stack(
        [cluster_means[used.loc[used["cell_type"] == t, "gene"].astype(str).str.upper().unique()].mean(axis=1) for t in cell_types]
    )
    best = scores.argmax(axis=1)
    names = [cell_types[b] if scores[i, b] > 0 else UNASSIGNED for i, b in enumerate(best)]
    label_of = dict(zip(clusters, names))
    per_cell = np.array([label_of[c] for c in cluster])
    table = {
        "method": f"Leiden (resolution {resolution}, igraph, seed {seed}) on a Gaussian-kernel kNN graph (k {N_NEIGHBORS}) "
        f"of PCA({n_comps}) of scaled HVGs; "
        "label = marker set with the highest mean z-scored expression, 'unassigned' when <= 0",
        "clusters": clusters,
        "labels": names,
        "n_cells": [int((cluster == c).sum()) for c in clusters],
        "cell_types": cell_types,
        "scores": scores.astype(np.float64),  # clusters x cell_types
        "markers_used": sorted(genes.index),
        "markers_skipped": skipped,
    }
    for c, name, score in zip(clusters, names, scores.max(axis=1)):
        logger.info("cluster %s (%d cells) -> %s (score %.3f)", c, (cluster == c).sum(), name, score)
    label_order = [t for t in [*cell_types, UNASSIGNED] if t in set(names)]
    return (
        pd.Categorical(cluster, categories=clusters),
        pd.Categorical(per_cell, categories=label_order),
        table,
    )


def cell_label_table(uns_cell_labels: Mapping) -> pd.DataFrame:
    """The per-cluster audit table of :func:`label_by_markers` as a DataFrame (one row per cluster)."""
    table = pd.DataFrame(
        np.asarray(uns_cell_labels["scores"]), columns=list(uns_cell_labels["cell_types"])
    )
    table.insert(0, "label", list(uns_cell_labels["labels"]))
    table.insert(0, "n_cells", list(uns_cell_labels["n_cells"]))
    table.insert(0, "cluster", list(uns_cell_labels["clusters"]))
    return table
