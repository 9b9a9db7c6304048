"""How close a run's corrected values are to the simulated batch-free truth (docs/evaluation.md, flaw G10).

Truth counts are log-normalised exactly as the data (normalize_total to 1e4 over all genes, log1p)
and then restricted to the run's cells and genes, so both sides live on the same scale. Reported
together, never alone: per-gene Pearson (median over genes), MSE over all entries, per-gene 1-D
Wasserstein distance (mean over genes), and recovery of the true DE genes by Wilcoxon calls on the
corrected values.
"""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from deepexpr.de.singlecell import wilcoxon_by_cell_type
from deepexpr.errors import InputError
from deepexpr.evaluate.integration import run_identity
from deepexpr.integration.baselines import finish_integration
from deepexpr.metrics.truth import de_recovery, per_gene_pearson

logger = logging.getLogger(__name__)

#: Cells and entries drawn for the truth-vs-corrected scatter.
SAMPLE_CELLS = 800
SAMPLE_ENTRIES = 20_000

#: Column order of truth.tsv.
TRUTH_COLUMNS = [
    "run",
    "method",
    "mode",
    "seed",
    "pearson_median",
    "pearson_median_batch_genes",
    "mse",
    "w1",
    "de_precision",
    "de_recall",
    "de_f1",
    "de_auprc",
    "n_de_called",
    "n_de_true",
    "sample_pearson",
    "n_genes_constant",
]


def log_normalised_truth(truth: ad.AnnData, cells: pd.Index, genes: pd.Index, target_sum: float = 1e4) -> np.ndarray:
    """Truth counts as log1p(normalize_total(target_sum)) over ALL truth genes, then cells x genes."""
    missing_cells = cells.difference(truth.obs_names)
    missing_genes = genes.difference(truth.var_names)
    if len(missing_cells) or len(missing_genes):
        raise InputError(
            "truth.h5ad",
            f"{len(missing_cells)} cells (e.g. {list(missing_cells[:3])}) and {len(missing_genes)} genes "
            f"(e.g. {list(missing_genes[:3])}) of the run are absent from the truth",
        )
    counts = sp.csr_matrix(truth.X, dtype=np.float64)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    if (totals <= 0).any():
        raise InputError("truth.h5ad", f"{int((totals <= 0).sum())} cells have no truth counts; cannot normalise")
    rows = truth.obs_names.get_indexer(cells)
    cols = truth.var_names.get_indexer(genes)
    subset = counts[rows][:, cols].toarray()
    return np.log1p(subset * (target_sum / totals[rows])[:, None])


#: Run name of the batch-free truth when it is scored beside the methods (scib.tsv, simulated data).
TRUTH_RUN = "truth"


def truth_reference_run(truth: ad.AnnData, prepared: ad.AnnData, seed: int) -> ad.AnnData:
    """The batch-free truth of the prepared cells and genes as a "full" integration run.

    Scored by scIB beside the methods, it is what a method that removed the batch effect exactly
    (and nothing else) would get: the ceiling of any correction of expression values scored on
    PCA(50). An embedding can score above it (it may also smooth away counting noise).
    """
    expected = log_normalised_truth(truth, prepared.obs_names, prepared.var_names)
    return finish_integration(
        prepared,
        TRUTH_RUN,
        corrected=expected,
        seconds=0.0,
        params={"reference": "batch-free simulated counts, log1p(normalize_total 1e4)"},
        seed=seed,
        output="full",
    )


def truth_metrics(
    run_adata: ad.AnnData,
    truth: ad.AnnData,
    prepared: ad.AnnData,
    seed: int,
    run: str | None = None,
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Score one run's ``layers["corrected"]`` against the batch-free truth.

    Returns the truth.tsv row, the per-gene table (run, gene, pearson, w1, mse) and the scatter
    sample (run, truth, corrected: ``SAMPLE_CELLS`` seeded cells, then ``SAMPLE_ENTRIES`` seeded
    entries of those cells x all genes). ``seed`` draws the sample, so the same seed samples the
    same cells and entries for every run. ``prepared`` must hold the run's cells and genes; the
    true DE set is truth var ``de_gene`` restricted to them (the HVGs). Genes constant in the run
    or in the truth have no Pearson r: excluded from the median and counted in
    ``n_genes_constant``.
    """
    run = run or str(run_adata.uns.get("integration", {}).get("method", "run"))
    if "corrected" not in run_adata.layers:
        raise InputError(f"integration run {run}", "layers['corrected'] is missing (truth metrics need values)")
    if not (run_adata.obs_names.equals(prepared.obs_names) and run_adata.var_names.equals(prepared.var_names)):
        raise InputError(f"integration run {run}", "cells/genes differ from prepared.h5ad (same order expected)")
    if "de_gene" not in truth.var:
        raise InputError("truth.h5ad", "var has no 'de_gene' column")
    cells, genes = run_adata.obs_names, run_adata.var_names
    expected = log_normalised_truth(truth, cells, genes)
    corrected = np.asarray(run_adata.layers["corrected"], dtype=np.float64)

    pearson = per_gene_pearson(corrected, expected)
    gene_mse = ((corrected - expected) ** 2).mean(axis=0)
    w1 = np.array([stats.wasserstein_distance(corrected[:, g], expected[:, g]) for g in range(len(genes))])
    per_gene = pd.DataFrame({"run": run, "gene": genes.astype(str), "pearson": pearson, "w1": w1, "mse": gene_mse})

    is_de = truth.var["de_gene"].reindex(genes).astype(bool)
    wilcoxon = wilcoxon_by_cell_type(run_adata, run)
    sample = truth_sample(corrected, expected, seed, run)
    n_constant = int(np.isnan(pearson).sum())
    # Genes the simulated batch effect left alone are identical to the truth before correction, so
    # the median over all genes cannot tell methods apart when most genes are untouched.
    touched = truth.var["batch_affected"].reindex(genes).fillna(False).to_numpy(bool) if "batch_affected" in truth.var else None
    touched_pearson = pearson[touched] if touched is not None else np.array([])
    row = {
        **run_identity(run, run_adata),
        "pearson_median": float(np.nanmedian(pearson)) if n_constant < len(genes) else np.nan,
        "pearson_median_batch_genes": (
            float(np.nanmedian(touched_pearson)) if np.isfinite(touched_pearson).any() else np.nan
        ),
        "mse": float(gene_mse.mean()),
        "w1": float(w1.mean()),
        **de_recovery(wilcoxon, is_de),
        "sample_pearson": float(stats.pearsonr(sample["truth"], sample["corrected"]).statistic),
        "n_genes_constant": n_constant,
    }
    logger.info(
        "truth %s: pearson median %.3f, MSE %.4f, W1 %.4f, DE F1 %.3f (%d constant genes)",
        run,
        row["pearson_median"],
        row["mse"],
        row["w1"],
        row["de_f1"],
        n_constant,
    )
    return row, per_gene, sample


def truth_sample(corrected: np.ndarray, expected: np.ndarray, seed: int, run: str) -> pd.DataFrame:
    """Seeded scatter sample: ``SAMPLE_CELLS`` cells, then ``SAMPLE_ENTRIES`` of their entries."""
    rng = np.random.default_rng(seed)
    cells = np.sort(rng.choice(corrected.shape[0], size=min(SAMPLE_CELLS, corrected.shape[0]), replace=False))
    truth_values, run_values = expected[cells].ravel(), corrected[cells].ravel()
    entries = np.sort(rng.choice(truth_values.size, size=min(SAMPLE_ENTRIES, truth_values.size), replace=False))
    return pd.DataFrame({"run": run, "truth": truth_values[entries], "corrected": run_values[entries]})
