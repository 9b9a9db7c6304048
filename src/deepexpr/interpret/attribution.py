"""Gene attributions, model-independent: completeness check, gene ranking, scoring against truth.

A model's explainer (e.g. :mod:`deepexpr.interpret.genex`) produces per-cell attributions
(cells x genes) with the target logits F(x) and F(x0); :func:`completeness_gap` checks that the
attributions add up to F(x) - F(x0), :func:`rank_genes` turns them into the ranked gene table of
``results/{d}/explain/{covariate}.tsv`` and :func:`attribution_auroc` scores a ranking against a
simulation's truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepexpr.errors import InputError

#: Cells whose completeness gap exceeds this fraction of |F(x) - F(x0)| are flagged.
FLAG_RELATIVE_DELTA = 0.05
#: Fewest Integrated-Gradients steps accepted (corrected mode): fewer leave a larger completeness gap.
MIN_STEPS = 64
CELL_COLUMNS = ["cell", "level", "target_logit", "baseline_logit", "attribution_sum", "delta", "relative_delta", "flagged"]
RANK_COLUMNS = ["covariate", "level", "cell_type", "gene", "attribution", "abs_attribution", "rank", "n_cells"]


def completeness_gap(
    attributions: np.ndarray, f_x: np.ndarray, f_x0: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: the attributions' sum, delta = |sum - (F(x) - F(x0))| and delta relative to |F(x) - F(x0)|."""
    attribution_sum = attributions.astype(np.float64).sum(axis=1)
    delta = np.abs(attribution_sum - (f_x - f_x0))
    relative = delta / np.maximum(np.abs(f_x - f_x0), 1e-8)
    return attribution_sum, delta, relative


def explain_summary(cells: pd.DataFrame, baseline: str, n_steps: int) -> dict:
    """Per-covariate summary (summary.json): baseline, n_steps, n_cells, median gap, flagged cells."""
    return {
        "baseline": baseline,
        "n_steps": int(n_steps),
        "n_cells": int(len(cells)),
        "median_relative_delta": float(np.nanmedian(cells["relative_delta"])) if len(cells) else float("nan"),
        "n_flagged": int(cells["flagged"].sum()),
    }


def rank_genes(
    attributions: np.ndarray,
    obs: pd.DataFrame,
    covariate: str,
    genes,
    cell_type_key: str = "cell_type",
    level_key: str | None = None,
) -> pd.DataFrame:
    """Ranked genes per (level, cell type) in the explain/{covariate}.tsv format (``RANK_COLUMNS``).

    ``obs`` has one row per attribution row: the targeted level in ``level_key`` (default: the
    covariate's column; the table of :func:`deepexpr.interpret.genex.explain_covariate` has it as
    ``level``) and the cell type in ``cell_type_key`` when known. attribution = mean signed attribution over the group's
    cells, abs_attribution = mean |attribution|; rank 1 = largest abs_attribution within
    (level, cell type); cell_type "all" pools every cell type.
    """
    genes = np.asarray(list(map(str, genes)), dtype=object)
    attributions = np.asarray(attributions, dtype=np.float32)
    if attributions.shape != (len(obs), len(genes)):
        raise InputError(
            "attributions", f"shape {attributions.shape} does not match {len(obs)} cells x {len(genes)} genes"
        )
    level_key = level_key or covariate
    if level_key not in obs:
        raise InputError("obs", f"no column {level_key!r} with each cell's targeted level")
    levels = obs[level_key].astype(str).to_numpy()
    types = obs[cell_type_key].astype(str).to_numpy() if cell_type_key in obs else None
    frames = []
    for level in sorted(set(levels)):
        in_level = levels == level
        groups = [("all", in_level)]
        if types is not None:
            groups += [(t, in_level & (types == t)) for t in sorted(set(types[in_level]))]
        for cell_type, mask in groups:
            block = attributions[mask].astype(np.float64)
            mean_abs = np.abs(block).mean(axis=0)
            order = np.argsort(-mean_abs, kind="stable")
            rank = np.empty(len(genes), dtype=np.int64)
            rank[order] = np.arange(1, len(genes) + 1)
            frames.append(
                pd.DataFrame(
                    {
                        "covariate": covariate,
                        "level": level,
                        "cell_type": cell_type,
                        "gene": genes,
                        "attribution": block.mean(axis=0),
                        "abs_attribution": mean_abs,
                        "rank": rank,
                        "n_cells": int(mask.sum()),
                    }
                ).sort_values("rank")
            )
    return pd.concat(frames, ignore_index=True)[RANK_COLUMNS]


def gene_scores(ranked: pd.DataFrame) -> pd.Series:
    """Mean |attribution| of each gene over all cells (cell_type "all" rows, levels weighted by cells)."""
    pooled = ranked[ranked["cell_type"] == "all"]
    weighted = (pooled["abs_attribution"] * pooled["n_cells"]).groupby(pooled["gene"]).sum()
    return weighted / pooled.groupby("gene")["n_cells"].sum()


def attribution_auroc(ranked: pd.DataFrame | pd.Series, truth_flags: pd.Series) -> float:
    """AUROC of the genes' mean |attribution| (a rank table or a gene -> score Series) for recovering
    the truth flags (a gene -> bool Series, e.g. the simulation's ``batch_affected``)."""
    from sklearn.metrics import roc_auc_score

    scores = ranked if isinstance(ranked, pd.Series) else gene_scores(ranked)
    flags = pd.Series(truth_flags).astype(bool)
    common = scores.index.intersection(flags.index)
    if len(common) == 0:
        raise InputError("truth", "no gene of the attribution table is in the truth table")
    y = flags.loc[common].to_numpy()
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, scores.loc[common].to_numpy()))
