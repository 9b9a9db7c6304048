"""Which genes make GENEX's critic recognise a covariate: Integrated Gradients (docs/models/genex.md, G7/G8).

The critic of a trained :class:`~deepexpr.models.genex.GENEX` has one classifier head per
covariate: the batch (conditioning) head and the explanation-only heads (``explain_keys``).
:func:`explain_covariate` attributes each cell's head logit for a level to its genes with Captum's
Integrated Gradients and checks completeness per cell (the attributions must add up to
F(x) - F(x0)); :mod:`deepexpr.interpret.attribution` ranks the genes and scores the ranking.

Corrected (default, G7): critic in eval mode, per-cell target index, >= 64 steps, a documented
baseline. ``faithful=True`` reproduces the original wrapper for parity: [adv, heads...] logits
times one-hot target rows summed over the batch axis, critic in train mode (batch norm/dropout
active), zero baseline, Captum's default 50 steps, no per-cell convergence check.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from captum.attr import IntegratedGradients

from deepexpr.errors import InputError
from deepexpr.interpret.attribution import CELL_COLUMNS, FLAG_RELATIVE_DELTA, MIN_STEPS, completeness_gap
from deepexpr.models._base import ProgressReporter

logger = logging.getLogger(__name__)

BASELINES = ("zeros", "batch_mean", "reference_batch_mean")
FAITHFUL_STEPS = 50  # Captum 0.6's default, used by the original
CELLS_PER_CHUNK = 64


def covariate_head(model, covariate: str) -> tuple[str, list[str], np.ndarray]:
    """(critic head name, level names, every cell's level code) of a covariate the model can explain."""
    if covariate == model.setup["batch_key"]:
        return "batch", list(model.conditions), np.asarray(model.condition_codes)
    if covariate in model.explain_levels:
        return f"explain_{covariate}", list(model.explain_levels[covariate]), np.asarray(model.explain_codes[covariate])
    explainable = [model.setup["batch_key"], *model.explain_levels]
    raise InputError(
        "explain.covariates",
        f"{covariate!r} has no critic head; explainable: {explainable} (add it to setup_anndata(explain_keys=...))",
    )


def _mean_expression(model, rows: np.ndarray | None = None, chunk: int = 4096) -> np.ndarray:
    """Mean expression over the given cells (all when None), read in chunks (works when streaming)."""
    rows = np.arange(model.source.n_cells) if rows is None else np.sort(rows)
    total = np.zeros(model.source.n_genes, dtype=np.float64)
    for start in range(0, len(rows), chunk):
        total += model.source.rows(rows[start : start + chunk]).sum(axis=0)
    return (total / max(len(rows), 1)).astype(np.float32)


def baseline_profile(model, baseline: str, reference_level: str | None = None) -> np.ndarray:
    """The IG baseline x0: ``zeros``; ``batch_mean`` = mean expression of all cells;
    ``reference_batch_mean`` = mean expression of the cells of batch ``reference_level``."""
    if baseline not in BASELINES:
        raise InputError("explain.baseline", f"expected one of {list(BASELINES)}, got {baseline!r}")
    if baseline == "zeros":
        return np.zeros(model.source.n_genes, dtype=np.float32)
    if baseline == "batch_mean":
        return _mean_expression(model)
    if reference_level not in model.batches:
        raise InputError(
            "explain.reference_level", f"'reference_batch_mean' needs a batch level ({model.batches}), got {reference_level!r}"
        )
    codes = np.asarray(model.batch_codes)
    return _mean_expression(model, np.flatnonzero(codes == model.batches.index(reference_level)))


def explain_covariate(
    model,
    covariate: str,
    baseline: str = "batch_mean",
    n_steps: int = MIN_STEPS,
    max_cells: int | None = None,
    seed: int = 0,
    reference_level: str | None = None,
    target_level: str | None = None,
    faithful: bool = False,
    progress_every: int = 20,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Integrated Gradients of the critic's ``covariate`` head for every (or ``max_cells`` seeded
    random) cell.

    Each cell's target is its own level of the covariate, or ``target_level`` for all cells.
    Returns the per-cell table (``CELL_COLUMNS``: cell, level, target_logit F(x), baseline_logit
    F(x0), attribution_sum, delta = |sum - (F(x) - F(x0))|, relative_delta = delta / |F(x) -
    F(x0)|, flagged = relative_delta > 5 %) and the attributions (cells x genes, float32), rows in
    the table's order (cells sorted by position in the data).
    """
    head, levels, codes = covariate_head(model, covariate)
    if target_level is not None and target_level not in levels:
        raise InputError("explain.target_level", f"{target_level!r} is not a level of {covariate!r} ({levels})")
    if faithful:
        baseline, n_steps = "zeros", FAITHFUL_STEPS
    elif n_steps < MIN_STEPS:
        raise InputError("explain.n_steps", f"at least {MIN_STEPS} steps keep the completeness gap small; got {n_steps}")
    rows = np.arange(model.source.n_cells)
    if max_cells is not None and max_cells < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=int(max_cells), replace=False))
    x0 = torch.from_numpy(baseline_profile(model, baseline, reference_level))
    critic = model.module.to("cpu")
    # Column of level 0 of the head in the faithful [adv, heads...] concatenation.
    sizes = [h.out_features for h in critic.heads.values()]
    head_offset = 1 + sum(sizes[: list(critic.heads).index(head)])

    def head_logits(x):
        score, heads = critic.critic(x)
        return heads[head]

    def faithful_output(x, onehot):
        score, heads = critic.critic(x)
        logits = torch.cat([score[:, None], *heads.values()], dim=1)
        return (logits * onehot).sum()[None]

    targets_all = np.full(len(rows), levels.index(target_level)) if target_level is not None else codes[rows]
    attributions = np.zeros((len(rows), model.source.n_genes), dtype=np.float32)
    f_x = np.full(len(rows), np.nan)
    f_x0 = np.full(len(rows), np.nan)
    was_training = critic.training
    progress = ProgressReporter(-(-len(rows) // CELLS_PER_CHUNK), f"IG[{covariate}]", progress_every)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            critic.train(faithful)
            for chunk, start in enumerate(range(0, len(rows), CELLS_PER_CHUNK)):
                part = slice(start, start + CELLS_PER_CHUNK)
                x = torch.from_numpy(model.source.rows(rows[part]))
                base = x0.expand_as(x).contiguous()
                target = torch.from_numpy(targets_all[part].astype(np.int64))
                if faithful:
                    onehot = torch.zeros(len(x), 1 + sum(sizes))
                    onehot[torch.arange(len(x)), head_offset + target] = 1
                    ig = IntegratedGradients(faithful_output)
                    attr = ig.attribute(x, baselines=base, additional_forward_args=(onehot,), n_steps=n_steps)
                else:
                    ig = IntegratedGradients(head_logits)
                    attr = ig.attribute(
                        x, baselines=base, target=target, n_steps=n_steps, internal_batch_size=len(x) * 16
                    )
                    with torch.no_grad():
                        f_x[part] = head_logits(x).gather(1, target[:, None])[:, 0].double().numpy()
                        f_x0[part] = head_logits(base).gather(1, target[:, None])[:, 0].double().numpy()
                attributions[part] = attr.detach().float().numpy()
                progress.update(chunk + 1)
    finally:
        critic.train(was_training)
    progress.close(-(-len(rows) // CELLS_PER_CHUNK), "done")
    attribution_sum, delta, relative = completeness_gap(attributions, f_x, f_x0)
    cells = pd.DataFrame(
        {
            "cell": model.source.cell_names(rows),
            "level": np.asarray(levels, dtype=object)[targets_all],
            "target_logit": f_x,
            "baseline_logit": f_x0,
            "attribution_sum": attribution_sum,
            "delta": delta,
            "relative_delta": relative,
            "flagged": relative > FLAG_RELATIVE_DELTA,
        }
    )[CELL_COLUMNS]
    if not faithful:
        logger.info(
            "IG %s: %d cells, baseline %s, %d steps; median relative completeness gap %.3g, %d flagged (> %g)",
            covariate, len(rows), baseline, n_steps, np.median(relative), int(cells["flagged"].sum()), FLAG_RELATIVE_DELTA,
        )
    return cells, attributions
