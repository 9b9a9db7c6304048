"""Scores of corrected values against a batch-free truth: per-gene Pearson and DE-gene recovery.

Pure functions of arrays and tables; :mod:`deepexpr.evaluate.truth` reads the runs and composes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score


def per_gene_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each column of ``a`` with the same column of ``b``; NaN where either is constant."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    denominator = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=0) / denominator
    return np.where(denominator > 0, np.clip(r, -1.0, 1.0), np.nan)


def de_recovery(wilcoxon: pd.DataFrame, is_de: pd.Series) -> dict:
    """Precision/recall/F1 of Wilcoxon calls (called in any cell type) and AUPRC of the gene ranking.

    The ranking orders genes by their smallest adjusted p over cell types; it uses the largest
    |Wilcoxon z| instead, which gives the same order (p is a decreasing function of |z|, and the
    Bonferroni factor is the same in every cell type) without the ties of p-values clipped at 1
    or underflowed to 0.
    """
    called = wilcoxon.groupby("gene")["called"].any().reindex(is_de.index, fill_value=False)
    strength = wilcoxon.assign(abs_score=wilcoxon["score"].abs()).groupby("gene")["abs_score"].max()
    strength = strength.reindex(is_de.index).fillna(-1.0)
    truth = is_de.to_numpy(dtype=bool)
    n_called, n_true, n_hit = int(called.sum()), int(truth.sum()), int((called.to_numpy() & truth).sum())
    precision = n_hit / n_called if n_called else np.nan
    recall = n_hit / n_true if n_true else np.nan
    f1 = 2 * precision * recall / (precision + recall) if n_called and n_true and n_hit else 0.0
    auprc = float(average_precision_score(truth, strength.to_numpy())) if 0 < n_true < len(truth) else np.nan
    return {
        "de_precision": precision,
        "de_recall": recall,
        "de_f1": f1,
        "de_auprc": auprc,
        "n_de_called": n_called,
        "n_de_true": n_true,
    }
