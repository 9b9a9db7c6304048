"""Integration runs evaluated: the scIB table, UMAP coordinates and value histograms (docs/evaluation.md).

The scIB numbers come from scib-metrics' ``Benchmarker`` with three choices of ours: exact kNN
(sklearn, instead of pynndescent whose numba compilation alone costs about a minute on a small CPU
machine), Leiden NMI/ARI optimised over resolutions (as the original tables), and the classic
batch silhouette (silB) computed beside BRAS, the Benchmarker's default batch score since 0.5.6.
``total`` uses silB (comparable with the [orig] tables), ``total_bras`` uses BRAS (what the
Benchmarker itself reports). No min-max scaling.

All runs of a dataset are scored in one call: scib-metrics compiles its jax kernels once per
process, which dominates the cost on small data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import anndata as ad
import numpy as np
import pandas as pd

from deepexpr.errors import InputError
from deepexpr.metrics.integration import BENCHMARKER_NAMES, SCIB_COLUMNS, add_aggregates, exact_neighbors

logger = logging.getLogger(__name__)

def read_runs(paths: Iterable) -> dict[str, ad.AnnData]:
    """The integration runs of a dataset keyed by run name, i.e. the file name of ``{run}.h5ad``."""
    return {Path(path).stem: ad.read_h5ad(path) for path in paths}


def run_identity(run: str, adata: ad.AnnData) -> dict:
    """run, method, mode, seed of one integration run, read from its ``uns["integration"]``.

    ``mode`` is the model mode (GENEX: corrected/faithful) from uns["integration"]["mode"] or its
    params; baselines have no mode and get "none".
    """
    info = adata.uns.get("integration")
    if not isinstance(info, Mapping) or "method" not in info:
        raise InputError(f"integration run {run}", "uns['integration'] with a 'method' entry is missing")
    params = info.get("params", {}) or {}
    mode = info.get("mode", params.get("mode", "none"))
    return {"run": run, "method": str(info["method"]), "mode": str(mode), "seed": int(info.get("seed", 0))}


def _check_runs(runs: Mapping[str, ad.AnnData], batch_key: str, label_key: str) -> pd.DataFrame:
    if not runs:
        raise InputError("integration runs", "no runs to score")
    first_name, first = next(iter(runs.items()))
    for key in (batch_key, label_key):
        if key not in first.obs:
            raise InputError(f"integration run {first_name}", f"obs has no {key!r} column")
    for name, run in runs.items():
        if "X_emb" not in run.obsm:
            raise InputError(f"integration run {name}", "obsm['X_emb'] (the embedding to score) is missing")
        if not run.obs_names.equals(first.obs_names):
            raise InputError(
                f"integration run {name}", f"cells differ from run {first_name} (same cells, same order expected)"
            )
    obs = first.obs[[batch_key, label_key]].astype(str)
    if obs[label_key].nunique() < 2 or obs[batch_key].nunique() < 2:
        raise InputError(f"integration run {first_name}", f"scIB needs ≥2 levels in {batch_key!r} and {label_key!r}")
    return obs


def scib_table(
    runs: Mapping[str, ad.AnnData],
    batch_key: str = "batch",
    label_key: str = "cell_type",
    n_jobs: int = 1,
    pre_integrated: str = "unintegrated",
) -> pd.DataFrame:
    """scIB metrics of every run (one row each, the scib.tsv format).

    ``runs`` maps run names to integration AnnData objects over the same cells. PCR comparison
    measures batch variance against the ``pre_integrated`` run's embedding (PCA50 of the
    uncorrected data), which must be among the runs.
    """
    from scib_metrics import silhouette_batch
    from scib_metrics.benchmark import BatchCorrection, Benchmarker, BioConservation
    from scib_metrics.benchmark import _core as benchmark_core
    from scib_metrics.utils import _diffusion_nn

    obs = _check_runs(runs, batch_key, label_key)
    if pre_integrated not in runs:
        raise InputError("integration runs", f"the pre-integrated run {pre_integrated!r} (PCR reference) is missing")
    started = time.perf_counter()
    holder = ad.AnnData(obs=obs.copy())
    keys = {name: f"emb_{i}" for i, name in enumerate(runs)}  # obsm keys free of odd characters
    for name, key in keys.items():
        holder.obsm[key] = np.asarray(runs[name].obsm["X_emb"], dtype=np.float32)
    holder.obsm["pre_integrated"] = holder.obsm[keys[pre_integrated]]
    bench = Benchmarker(
        holder,
        batch_key=batch_key,
        label_key=label_key,
        embedding_obsm_keys=list(keys.values()),
        bio_conservation_metrics=BioConservation(
            isolated_labels=True,
            nmi_ari_cluster_labels_leiden={"optimize_resolution": True, "n_jobs": n_jobs},
            nmi_ari_cluster_labels_kmeans=False,
            silhouette_label=True,
            clisi_knn=True,
        ),
        batch_correction_metrics=BatchCorrection(),
        pre_integrated_embedding_obsm_key="pre_integrated",
        n_jobs=n_jobs,
        progress_bar=False,
    )
    bench.prepare(neighbor_computer=exact_neighbors)
    # kBET re-searches neighbours on a diffusion map of each label's subgraph with pynndescent;
    # exact search there too (docs/evaluation.md) and no numba compilation (~45 s per process).
    # The Benchmarker also runs a full gc.collect() before every metric: ~0.25 s each with
    # jax/torch loaded, a third of the time on small data; it frees nothing we need freed.
    with (
        mock.patch.object(_diffusion_nn.nearest_neighbors, "pynndescent", exact_neighbors),
        mock.patch.object(benchmark_core, "gc", SimpleNamespace(collect=lambda: 0)),
    ):
        bench.benchmark()
    results = bench.get_results(min_max_scale=False, clean_names=False)

    labels, batches = obs[label_key].to_numpy(), obs[batch_key].to_numpy()
    rows = []
    for name, key in keys.items():
        row = run_identity(name, runs[name])
        for source, column in BENCHMARKER_NAMES.items():
            row[column] = float(results.loc[key, source])
        row["silhouette_batch"] = float(silhouette_batch(holder.obsm[key], labels, batches))
        rows.append(row)
    table = add_aggregates(pd.DataFrame(rows))[SCIB_COLUMNS]
    logger.info("scIB: %d runs x %d cells scored in %.1f s", len(runs), holder.n_obs, time.perf_counter() - started)
    return table


def umap_table(runs: Mapping[str, ad.AnnData], seed: int, n_neighbors: int = 15) -> pd.DataFrame:
    """UMAP of each run's embedding on its exact kNN graph (k = 15), all runs in one long table:
    run, cell, umap1, umap2, batch, cell_type. One process for every run of a dataset, so umap's
    numba code compiles once (about 15 s) instead of once per run."""
    import scanpy as sc

    frames = []
    for run, run_adata in runs.items():
        if "X_emb" not in run_adata.obsm:
            raise InputError(f"integration run {run}", "obsm['X_emb'] (the embedding to draw) is missing")
        graph = ad.AnnData(obs=pd.DataFrame(index=run_adata.obs_names))
        graph.obsm["X_emb"] = np.asarray(run_adata.obsm["X_emb"], dtype=np.float32)
        sc.pp.neighbors(
            graph, n_neighbors=min(n_neighbors, graph.n_obs - 1), use_rep="X_emb", transformer="sklearn", random_state=seed
        )
        sc.tl.umap(graph, random_state=seed)
        coords = graph.obsm["X_umap"]
        obs = run_adata.obs
        frames.append(
            pd.DataFrame(
                {
                    "run": run,
                    "cell": run_adata.obs_names.astype(str),
                    "umap1": coords[:, 0],
                    "umap2": coords[:, 1],
                    "batch": obs["batch"].astype(str).to_numpy() if "batch" in obs else "NA",
                    "cell_type": obs["cell_type"].astype(str).to_numpy() if "cell_type" in obs else "NA",
                }
            )
        )
    if not frames:
        raise InputError("integration runs", "no runs to draw")
    return pd.concat(frames, ignore_index=True)


def _corrected(run_adata: ad.AnnData, run: str) -> np.ndarray:
    if "corrected" not in run_adata.layers:
        raise InputError(f"integration run {run}", "layers['corrected'] is missing (only full outputs have values)")
    return np.asarray(run_adata.layers["corrected"], dtype=np.float64)


def shared_bins(runs: Iterable[ad.AnnData], n_bins: int = 100) -> np.ndarray:
    """``n_bins`` equal-width bin edges spanning the corrected values of every run (one scale for all)."""
    lows, highs = [], []
    for run_adata in runs:
        values = _corrected(run_adata, str(run_adata.uns.get("integration", {}).get("method", "run")))
        lows.append(values.min())
        highs.append(values.max())
    if not lows:
        raise InputError("integration runs", "no full-output runs to bin")
    low, high = float(min(lows)), float(max(highs))
    return np.linspace(low, high if high > low else low + 1.0, n_bins + 1)


def value_histogram(run_adata: ad.AnnData, bins: int | Sequence[float], run: str) -> pd.DataFrame:
    """Binned histogram of a run's corrected values: run, bin_left, bin_right, count.

    Pass the same bin edges for every run so the histograms can be compared.
    """
    counts, edges = np.histogram(_corrected(run_adata, run).ravel(), bins=bins)
    return pd.DataFrame({"run": run, "bin_left": edges[:-1], "bin_right": edges[1:], "count": counts})


def value_summary(run_adata: ad.AnnData, run: str) -> dict:
    """Share of exact zeros and of negative values (in %), min, max and mean of a run's corrected values."""
    values = _corrected(run_adata, run)
    return {
        "run": run,
        "pct_zero": float(100.0 * np.mean(values == 0)),
        "pct_negative": float(100.0 * np.mean(values < 0)),
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(values.mean()),
    }


def run_note(adata: ad.AnnData) -> str:
    """What a reader must know beside a run's scores: an scVI run trained for fewer epochs than
    scvi-tools' own rule is ``capped``; Harmony says how it stopped. Empty for anything else."""
    params = (adata.uns.get("integration") or {}).get("params", {}) or {}
    if bool(params.get("epochs_capped", False)):
        return f"capped: {int(params['max_epochs'])} of scvi-tools' {int(params['epoch_rule'])} epochs"
    if "stop_reason" in params:
        return f"{int(params['iterations'])} iterations, {params['stop_reason']}"
    return ""


def method_group(method: str, mode: str) -> str:
    """The seeds of one method and mode form a group: ``genex_corrected``, ``scvi_recommended``, ``combat``."""
    return str(method) if str(mode) in ("", "none") else f"{method}_{mode}"


def seed_summary(table: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Mean, sd (ddof 1; NaN for a single seed) and number of seeds of each metric per method and mode.

    ``table`` has one row per run with columns method, mode, seed and the metrics (scib.tsv,
    truth.tsv); the result has one row per group (first-appearance order) with ``{metric}_mean``,
    ``{metric}_sd`` and ``n_seeds``; a ``note`` column, when present, is kept (joined if seeds differ).
    """
    missing = [column for column in ("method", "mode", "seed", *metrics) if column not in table.columns]
    if missing:
        raise InputError("seed summary", f"columns {missing} are missing (have {list(table.columns)})")
    groups = table.assign(group=[method_group(m, o) for m, o in zip(table["method"], table["mode"])])
    rows = []
    for group, part in groups.groupby("group", sort=False):
        row = {"group": group, "method": part["method"].iloc[0], "mode": part["mode"].iloc[0], "n_seeds": len(part)}
        if "note" in part.columns:
            row["note"] = "; ".join(dict.fromkeys(str(n) for n in part["note"].fillna("") if str(n)))
        for metric in metrics:
            values = pd.to_numeric(part[metric], errors="coerce")
            row[f"{metric}_mean"] = float(values.mean())
            row[f"{metric}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
