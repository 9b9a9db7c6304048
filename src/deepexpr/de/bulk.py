"""Differential expression with pyDESeq2, in the layout of the deseq2.tsv contract.

One call fits the DESeq2 model once and reads it three ways: Wald test with
Cook's filtering (the main p-values), without it (to expose the genes the
filter blanks out) and with apeGLM-shrunk LFCs.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping

import anndata as ad
import numpy as np
import pandas as pd
from pydeseq2.dds import DeseqDataSet
from pydeseq2.default_inference import DefaultInference
from pydeseq2.ds import DeseqStats
from threadpoolctl import threadpool_limits

from deepexpr.config import design_terms
from deepexpr.data.bulk.read import validate_contrast

logger = logging.getLogger(__name__)

#: Column order of deseq2.tsv.
DESEQ2_COLUMNS = [
    "gene_id",
    "symbol",
    "base_mean",
    "log2fc",
    "lfc_se",
    "stat",
    "pvalue",
    "padj",
    "log2fc_shrunk",
    "padj_no_cooks_filter",
    "cooks_outlier",
    "naive_log2fc",
]


def _design_metadata(obs: pd.DataFrame, contrast: Mapping) -> pd.DataFrame:
    """Design columns as categoricals with the contrast's reference level first.

    pyDESeq2 codes a categorical against its first level, so putting the
    reference first makes the design coefficient equal the contrast, which is
    what apeGLM shrinkage acts on.
    """
    metadata = obs[design_terms(contrast["design"])].copy()
    for column in metadata.columns:
        levels = [str(v) for v in pd.Categorical(metadata[column]).remove_unused_categories().categories]
        if column == contrast["factor"]:
            reference = str(contrast["reference"])
            levels = [reference] + [v for v in levels if v != reference]
        metadata[column] = pd.Categorical(metadata[column].astype(str), categories=levels)
    return metadata


def naive_log2fc(normalised: pd.DataFrame, is_test: np.ndarray, is_reference: np.ndarray) -> pd.Series:
    """log2 ratio of mean size-normalised counts (samples x genes), pseudocount 0.5."""
    test_mean = normalised[is_test].mean(axis=0)
    reference_mean = normalised[is_reference].mean(axis=0)
    return np.log2((test_mean + 0.5) / (reference_mean + 0.5))


def _contrast_coefficient(stats: DeseqStats) -> str:
    """Name of the design coefficient that equals the contrast (for lfc_shrink)."""
    vector = pd.Series(np.asarray(stats.contrast_vector, dtype=float), index=stats.LFC.columns)
    unit = (vector == 1).sum() == 1 and (vector != 0).sum() == 1
    if not unit:
        raise ValueError(f"contrast is not a single design coefficient: {vector.to_dict()}")
    return str(vector.index[vector == 1][0])


def _log_warnings(caught: list[warnings.WarningMessage]) -> None:
    for message in dict.fromkeys(str(w.message) for w in caught):
        logger.warning("pydeseq2: %s", message)


def run_deseq2(
    adata: ad.AnnData,
    contrast: Mapping,
    n_cpus: int = 1,
    cooks_filter: bool = True,
    shrink: bool = True,
) -> pd.DataFrame:
    """Run pyDESeq2 on ``layers["counts"]`` for one contrast; one row per gene.

    Samples are restricted to ``contrast["subset"]``. ``log2fc`` is
    log2(test / reference). ``padj_no_cooks_filter`` comes from the same fit
    tested without Cook's filtering; ``cooks_outlier`` marks genes whose
    p-value only that filter removed. ``log2fc_shrunk`` is NaN unless
    ``shrink``. pyDESeq2 runs quietly; its warnings go to this module's logger.
    """
    started = time.perf_counter()
    obs = validate_contrast(contrast, adata.obs)
    subset = adata[obs.index]
    counts = pd.DataFrame(
        np.asarray(subset.layers["counts"], dtype=np.int64), index=subset.obs_names, columns=subset.var_names
    )
    factor, test, reference = contrast["factor"], str(contrast["test"]), str(contrast["reference"])
    inference = DefaultInference(n_cpus=n_cpus)

    # pyDESeq2 solves thousands of tiny per-gene systems: multi-threaded BLAS only adds
    # synchronisation overhead there (10-20x slower on a busy 2-core machine), so
    # parallelism comes from n_cpus alone.
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(limits=1):
        warnings.simplefilter("always")
        dds = DeseqDataSet(
            counts=counts,
            metadata=_design_metadata(obs, contrast),
            design=contrast["design"],
            refit_cooks=True,
            inference=inference,
            quiet=True,
        )
        dds.deseq2()
        tests = {
            filtered: DeseqStats(
                dds, contrast=[factor, test, reference], cooks_filter=filtered, inference=inference, quiet=True
            )
            for filtered in (True, False)
        }
        for wald in tests.values():
            wald.summary()
        main = tests[cooks_filter].results_df.copy()
        filtered, unfiltered = tests[True].results_df.copy(), tests[False].results_df.copy()
        shrunk = pd.Series(np.nan, index=counts.columns)
        if shrink:
            # lfc_shrink rewrites the object's LFCs and SEs, so it runs after the tables are copied.
            coefficient = _contrast_coefficient(tests[False])
            tests[False].lfc_shrink(coeff=coefficient)
            shrunk = tests[False].LFC[coefficient] / np.log(2)
    _log_warnings(caught)

    size_factors = dds.obs["size_factors"].to_numpy(dtype=float)
    levels = obs[factor].astype(str).to_numpy()
    table = pd.DataFrame(
        {
            "gene_id": counts.columns.astype(str),
            "symbol": subset.var["symbol"].astype(str).to_numpy(),
            "base_mean": main["baseMean"].to_numpy(),
            "log2fc": main["log2FoldChange"].to_numpy(),
            "lfc_se": main["lfcSE"].to_numpy(),
            "stat": main["stat"].to_numpy(),
            "pvalue": main["pvalue"].to_numpy(),
            "padj": main["padj"].to_numpy(),
            "log2fc_shrunk": shrunk.reindex(counts.columns).to_numpy(),
            "padj_no_cooks_filter": unfiltered["padj"].to_numpy(),
            "cooks_outlier": (filtered["pvalue"].isna() & unfiltered["pvalue"].notna()).to_numpy(),
            "naive_log2fc": naive_log2fc(
                counts / size_factors[:, None], levels == test, levels == reference
            ).to_numpy(),
        }
    )[DESEQ2_COLUMNS]
    logger.info(
        "pyDESeq2 %s (%s, %d samples, %d genes): %d padj < 0.05, %d padj NA (%d Cook's outliers), %.1f s",
        contrast["name"],
        contrast["design"],
        counts.shape[0],
        counts.shape[1],
        int((table["padj"] < 0.05).sum()),
        int(table["padj"].isna().sum()),
        int(table["cooks_outlier"].sum()),
        time.perf_counter() - started,
    )
    return table
