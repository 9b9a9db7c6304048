"""Metrics for comparing differential-expression estimates (docs/evaluation.md).

Pure functions on pandas Series indexed by gene id (or aligned arrays):
agreement between two LFC estimators, recovery of true DE genes on simulated
data, and top-k overlaps.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from deepexpr.errors import InputError


def _aligned(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Two inputs as float arrays, aligned on the index when both are Series."""
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        a, b = a.align(b, join="inner")
    return np.asarray(a, dtype=float), np.asarray(b, dtype=float)


def lfc_agreement(a, b) -> dict[str, float]:
    """Pearson and Spearman correlation of two LFC estimates over finite pairs."""
    x, y = _aligned(a, b)
    finite = np.isfinite(x) & np.isfinite(y)
    n = int(finite.sum())
    if n < 3:
        return {"pearson": np.nan, "spearman": np.nan, "n": n}
    return {
        "pearson": float(stats.pearsonr(x[finite], y[finite]).statistic),
        "spearman": float(stats.spearmanr(x[finite], y[finite]).statistic),
        "n": n,
    }


def _ranking_inputs(scores, is_de) -> tuple[np.ndarray, np.ndarray] | None:
    """Scores with non-finite values ranked last; None when only one class is present."""
    score, truth = _aligned(scores, is_de)
    truth = truth.astype(bool)
    if truth.all() or not truth.any():
        return None
    finite = np.isfinite(score)
    lowest = score[finite].min() - 1.0 if finite.any() else 0.0
    return np.where(finite, score, lowest), truth


def auroc(scores, is_de) -> float:
    """Area under the ROC curve of ``scores`` (higher = more DE) for ``is_de``.

    Genes without a finite score (e.g. NA padj) rank below every scored gene;
    NaN when ``is_de`` has a single class.
    """
    inputs = _ranking_inputs(scores, is_de)
    return np.nan if inputs is None else float(roc_auc_score(inputs[1], inputs[0]))


def auprc(scores, is_de) -> float:
    """Average precision of ``scores`` for ``is_de`` (non-finite scores ranked last)."""
    inputs = _ranking_inputs(scores, is_de)
    return np.nan if inputs is None else float(average_precision_score(inputs[1], inputs[0]))


def n_called(called) -> int:
    """Number of genes called DE."""
    return int(np.asarray(called, dtype=bool).sum())


def observed_fdr(called, is_de) -> float:
    """Fraction of called genes that are not truly DE; NaN when nothing is called."""
    call, truth = _aligned(called, is_de)
    call, truth = call.astype(bool), truth.astype(bool)
    return float((call & ~truth).sum() / call.sum()) if call.any() else np.nan


def truth_metrics(scores, called, is_de) -> dict[str, float]:
    """AUROC, AUPRC, observed FDR and number called, as reported per method."""
    return {
        "auroc": auroc(scores, is_de),
        "auprc": auprc(scores, is_de),
        "observed_fdr": observed_fdr(called, is_de),
        "n_called": n_called(called),
    }


def true_lfc_for_contrast(truth: pd.DataFrame, contrast: Mapping) -> pd.Series:
    """True log2(test / reference) per gene from a simulator truth table.

    Truth has one ``lfc__<factor>__<level>`` column per non-reference level;
    a contrast level without a column is the factor's reference (effect 0).
    The model is additive, so subsetting samples does not change the value.
    """
    factor = contrast["factor"]
    prefix = f"lfc__{factor}__"
    if not any(c.startswith(prefix) for c in truth.columns):
        raise InputError("truth", f"no '{prefix}<level>' column for factor {factor!r}")
    levels = {role: str(contrast[role]) for role in ("test", "reference")}
    absent = [role for role, level in levels.items() if prefix + level not in truth.columns]
    if len(absent) == 2:
        raise InputError(
            "truth",
            f"neither {levels['test']!r} nor {levels['reference']!r} has a '{prefix}<level>' column; "
            "only one of them can be the factor's reference level",
        )

    def effect(level: str) -> pd.Series:
        column = prefix + level
        return truth[column] if column in truth.columns else pd.Series(0.0, index=truth.index)

    lfc = effect(levels["test"]) - effect(levels["reference"])
    return pd.Series(lfc.to_numpy(dtype=float), index=truth["gene_id"].astype(str), name="true_log2fc")


def top_k_genes(scores: pd.Series, k: int, direction: str = "up") -> pd.Index:
    """The ``k`` genes with the highest (``up``) or lowest (``down``) finite score."""
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")
    finite = scores[np.isfinite(scores.to_numpy(dtype=float))]
    ordered = finite.sort_values(ascending=direction == "down", kind="stable")
    return ordered.index[:k]


def jaccard(a, b) -> float:
    """|A ∩ B| / |A ∪ B| of two gene collections (NaN when both are empty)."""
    a, b = set(a), set(b)
    union = a | b
    return len(a & b) / len(union) if union else np.nan


def top_k_overlap(
    estimate: pd.Series,
    reference: pd.Series,
    k: int = 500,
    direction: str = "up",
    reference_called: Collection | None = None,
) -> dict[str, float]:
    """Overlap of the top-k genes of an LFC estimate with a reference estimate.

    Returns the Jaccard index and shared count of the two top-k sets and, when
    ``reference_called`` (e.g. DESeq2 padj < 0.05 & LFC > 1 genes) is given,
    how many of the estimate's top-k genes it contains (``n_reference_called``).
    """
    top_estimate = top_k_genes(estimate, k, direction)
    top_reference = top_k_genes(reference, k, direction)
    overlap = {
        "jaccard": jaccard(top_estimate, top_reference),
        "n_shared": len(set(top_estimate) & set(top_reference)),
    }
    if reference_called is not None:
        overlap["n_reference_called"] = len(set(top_estimate) & set(reference_called))
    return overlap
