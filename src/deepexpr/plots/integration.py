"""Batch-correction figures drawn from ``results/{dataset}/integration/``: UMAP grids, value
histograms, truth-vs-corrected scatter, truth metric and DE-recovery bars, and the scIB table.

Every function reads the result tables the workflow wrote (schemas in the project contracts),
computes every number it shows from them, draws one figure (into ``ax``/``fig`` when given), writes
it to ``out`` when given (PNG, or SVG/PDF by suffix) and returns it, with those numbers in
``figure.numbers`` so callers and tests can check them (:func:`deepexpr.plots.style.styled`).
"""

from __future__ import annotations

import math
import re
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize, to_rgb
from matplotlib.patches import Rectangle

from deepexpr.errors import InputError
from deepexpr.plots.style import (
    PALETTE,
    add_note,
    fmt_count,
    new_figure,
    numeric,
    plt,
    read_checked,
    savefig,
    set_title,
    styled,
)
from deepexpr.registry import INTEGRATION_METHODS, MODE_COLOURS, parse_run

CAPTIONS = {
    "umap": "UMAP of each run's embedding (kNN k = 15 on the embedding scored by scIB, seeded), one panel per method, "
    "coloured by batch or by cell type. Good correction mixes the batches within each cell type while keeping cell "
    "types apart.",
    "value_histograms": "Distribution of the corrected log-expression values of each method that outputs a matrix "
    "(log y-axis), with the percentage of exact zeros and of negative values. Raw log-normalised data has no "
    "negative values and many zeros; this shows whether a correction keeps that shape (the original GENEX's "
    '"distribution preserved" claim).',
    "truth_scatter": "Corrected against true batch-free log expression (normalize_total 1e4 + log1p of the "
    "simulator's batch-free counts of the same cells) for 20,000 entries sampled from 800 random cells, with their "
    "Pearson r and the identity line. Only simulated data has this truth.",
    "truth_metrics": "Agreement of each method's corrected values with the true batch-free log expression: median "
    "over genes of the per-gene Pearson r (over all genes, and over the genes the simulated batch effect touched: "
    "untouched genes already equal the truth before correction), mean squared error over all entries, and mean over genes of the 1-D "
    "Wasserstein distance (docs/evaluation.md). Higher Pearson, lower MSE and Wasserstein are better.",
    "de_recovery": "Recovery of the simulated cell-type DE genes from each method's corrected values: Wilcoxon test "
    "of each cell type against the rest (Bonferroni, min_in_group_fraction 0.25, adjusted p < 0.05), a gene called "
    "if called in any cell type; precision, recall and F1 against the truth, and AUPRC of the ranking by the "
    "smallest adjusted p-value.",
    "scib_table": "scIB metrics of every batch-correction run (scib-metrics Benchmarker, no min-max scaling). "
    "Embeddings: PCA(50) of the corrected log expression for methods that output a matrix (GENEX, ComBat, "
    "unintegrated), the method's own embedding otherwise (Harmony, Scanorama, scVI). NMI and ARI are taken at the "
    "Leiden resolution that maximises NMI. Bio conservation = mean of isolated labels, NMI, ARI, label silhouette "
    "and cLISI; batch correction = mean of batch silhouette (classic definition), iLISI, kBET, graph connectivity "
    "and PCR comparison; total = 0.6 bio + 0.4 batch. The BRAS column (scib-metrics' default batch score) is shown "
    "but not averaged; the extra aggregate columns use BRAS in place of the batch silhouette, as the Benchmarker "
    "reports them.",
}

# --------------------------------------------------------------------------------------------------------------------
# Run names -> labels, order and colours (shared by every figure, so a method looks the same everywhere)

#: Rows that are not methods: the simulated batch-free truth (scib.tsv of simulated data).
REFERENCE_LABELS = {"truth": "Batch-free truth (reference)"}
_OTHER_COLOURS = [PALETTE[7], "#8C6D31", "#7F7F7F"]


def run_label(run: str) -> str:
    """Display label of a run name: ``genex_corrected_seed0`` -> ``GENEX (corrected, seed 0)``."""
    run = str(run)
    parsed = parse_run(run)
    if parsed is None:
        return REFERENCE_LABELS.get(run, run)
    method, mode, seed = parsed
    return f"{method.label} ({mode}, seed {seed})" if method.modes else method.label


def _run_sort_key(run: str) -> tuple:
    """Registry methods in the registry's order (by mode and seed within one), anything else, the truth."""
    parsed = parse_run(run)
    if parsed is not None:
        method, mode, seed = parsed
        return (0, list(INTEGRATION_METHODS).index(method.name), mode, seed)
    return (2 if run in REFERENCE_LABELS else 1, 0, run, 0)


def run_order(runs) -> list[str]:
    """Runs in display order: unintegrated, the baselines, the deep models by mode and seed, others, the truth."""
    return sorted(dict.fromkeys(map(str, runs)), key=_run_sort_key)


def run_colour(run: str) -> str:
    """One colour per method (all seeds of a mode share it; modes have their own colours)."""
    run = str(run)
    parsed = parse_run(run)
    if parsed is not None:
        method, mode, _ = parsed
        return MODE_COLOURS.get(mode, method.colour) if method.modes else method.colour
    if run in REFERENCE_LABELS:
        return "#000000"
    return _OTHER_COLOURS[sum(map(ord, run)) % len(_OTHER_COLOURS)]


def natural_key(text) -> list:
    """Sort key that puts ``type_2`` before ``type_10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", str(text)) if part]


def level_colours(levels: Sequence[str]) -> dict[str, tuple]:
    """Colour per category level; the same level gets the same colour in every panel."""
    levels = list(levels)
    if len(levels) <= len(PALETTE) - 2:  # leave out yellow and black, poor on white backgrounds with tiny points
        colours = [to_rgb(c) for c in PALETTE[:6]]
    elif len(levels) <= 20:
        colours = list(plt.get_cmap("tab20").colors)
    else:
        colours = [tuple(c[:3]) for c in plt.get_cmap("turbo")(np.linspace(0.03, 0.97, len(levels)))]
    return {level: colours[i % len(colours)] for i, level in enumerate(levels)}


def _grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    ncols = min(max_cols, max(1, math.ceil(math.sqrt(n))))
    return math.ceil(n / ncols), ncols


def _ordered_runs(df: pd.DataFrame) -> list[str]:
    return run_order(df["run"].astype(str))


def _hide_unused(axes, used: int) -> None:
    for ax in np.ravel(axes)[used:]:
        ax.axis("off")


# --------------------------------------------------------------------------------------------------------------------
# UMAP grid


@styled
def plot_umaps(
    umap_tsv,
    color: str,
    out=None,
    seed: int = 0,
    *,
    runs: Sequence[str] | None = None,
    dataset: str = "",
    label: str = "",
    mode: str = "",
) -> dict:
    """One UMAP panel per run coloured by ``color`` (``batch`` or ``cell_type``), one shared legend.

    ``umap_tsv``: the long table of :func:`deepexpr.evaluate.integration.umap_table` (one row per
    run and cell); ``runs`` picks some of its runs (None = all). Points are drawn in a seeded random
    order so no level hides the others. Returns ``runs``, ``n_cells`` per run and ``levels``.
    """
    df = read_checked(umap_tsv, ["run", "cell", "umap1", "umap2", color])
    for col in ("umap1", "umap2"):
        df[col] = numeric(df, col, umap_tsv)
    df["run"] = df["run"].astype(str)
    df[color] = df[color].astype(str)
    wanted = _ordered_runs(df) if runs is None else run_order(runs)
    missing = sorted(set(wanted) - set(df["run"]))
    if missing:
        raise InputError(str(umap_tsv), f"no UMAP rows for runs {missing}")
    tables = {run: df[df["run"] == run] for run in wanted}
    levels = sorted(set().union(*(set(df[color]) for df in tables.values())), key=natural_key)
    colours = level_colours(levels)

    nrows, ncols = _grid_shape(len(tables))
    fig, axes = new_figure(nrows, ncols, figsize=(2.9 * ncols + 1.8, 2.8 * nrows + 0.6), squeeze=False)
    for ax, (run, df) in zip(axes.ravel(), tables.items()):
        shuffled = df.iloc[np.random.default_rng(seed).permutation(len(df))]
        size = float(np.clip(20_000 / max(len(df), 1), 0.3, 6.0))
        ax.scatter(
            shuffled["umap1"],
            shuffled["umap2"],
            c=[colours[v] for v in shuffled[color]],
            s=size,
            lw=0,
            rasterized=True,
        )
        ax.set_title(f"{run_label(run)} ({fmt_count(len(df))} cells)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("UMAP1", fontsize=8)
        ax.set_ylabel("UMAP2", fontsize=8)
    _hide_unused(axes, len(tables))
    handles = [
        plt.Line2D([], [], marker="o", ls="", markersize=6, markerfacecolor=colours[lvl], markeredgewidth=0, label=lvl)
        for lvl in levels
    ]
    fig.legend(
        handles=handles,
        title=color.replace("_", " "),
        loc="outside right upper",
        ncols=1 if len(levels) <= 25 else 2,
        handletextpad=0.3,
    )
    set_title(fig, f"UMAP of each run's embedding, coloured by {color.replace('_', ' ')}", dataset, label, mode)
    savefig(fig, out)
    return {"runs": list(tables), "n_cells": {run: len(df) for run, df in tables.items()}, "levels": levels}


# --------------------------------------------------------------------------------------------------------------------
# Value histograms


@styled
def plot_value_histograms(values_tsv, summary_tsv, out=None, *, dataset: str = "", label: str = "", mode: str = "") -> dict:
    """Binned corrected values per full-output run (log y), annotated with % zeros and % negatives.

    Returns ``runs``, ``pct_zero`` and ``pct_negative`` per run (from the summary table).
    """
    values = read_checked(values_tsv, ["run", "bin_left", "bin_right", "count"])
    summary = read_checked(summary_tsv, ["run", "pct_zero", "pct_negative", "min", "max", "mean"])
    for col in ("bin_left", "bin_right", "count"):
        values[col] = numeric(values, col, values_tsv)
    for col in ("pct_zero", "pct_negative", "min", "max", "mean"):
        summary[col] = numeric(summary, col, summary_tsv)
    values["run"] = values["run"].astype(str)
    summary = summary.assign(run=summary["run"].astype(str)).set_index("run")
    runs = _ordered_runs(values)
    missing = [run for run in runs if run not in summary.index]
    if missing:
        raise InputError(summary_tsv, f"column run: no row for {', '.join(missing)} (present in {values_tsv})")
    if not runs:
        raise InputError(values_tsv, "no histogram rows")

    nrows, ncols = _grid_shape(len(runs), max_cols=3)
    fig, axes = new_figure(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows + 0.6), squeeze=False, sharex=True)
    for ax, run in zip(axes.ravel(), runs):
        part = values[values["run"] == run].sort_values("bin_left")
        edges = np.append(part["bin_left"].to_numpy(), part["bin_right"].iloc[-1])
        counts = part["count"].to_numpy()
        ax.stairs(counts, edges, fill=True, color=run_colour(run), alpha=0.8)
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.7)
        ax.axvline(0, color="black", lw=0.6, ls="--")
        row = summary.loc[run]
        ax.text(
            0.97,
            0.95,
            f"zeros: {row['pct_zero']:.1f} %\nnegative: {row['pct_negative']:.1f} %\n"
            f"range {row['min']:.2g} to {row['max']:.2g}\nmean {row['mean']:.3g}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=7.5,
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#BBBBBB", "alpha": 0.9},
        )
        ax.set_title(run_label(run), fontsize=9)
        ax.grid(alpha=0.3, lw=0.5)
    for ax in axes[-1]:
        ax.set_xlabel("corrected log expression")
    for ax in axes[:, 0]:
        ax.set_ylabel("entries (log scale)")
    _hide_unused(axes, len(runs))
    set_title(fig, "Distribution of corrected values (runs that output a matrix)", dataset, label, mode)
    savefig(fig, out)
    return {
        "runs": runs,
        "pct_zero": {run: float(summary.loc[run, "pct_zero"]) for run in runs},
        "pct_negative": {run: float(summary.loc[run, "pct_negative"]) for run in runs},
    }


# --------------------------------------------------------------------------------------------------------------------
# Simulation truth


def _read_truth(truth_tsv, columns: Sequence[str]) -> pd.DataFrame:
    truth = read_checked(truth_tsv, ["run"] + list(columns))
    for col in columns:
        truth[col] = numeric(truth, col, truth_tsv)
    truth["run"] = truth["run"].astype(str)
    if truth["run"].duplicated().any():
        raise InputError(truth_tsv, f"column run: duplicated run {truth.loc[truth['run'].duplicated(), 'run'].iloc[0]}")
    if truth.empty:
        raise InputError(truth_tsv, "no runs (expected one row per full-output run)")
    return truth.set_index("run").loc[run_order(truth["run"])]


@styled
def plot_truth_scatter(truth_tsv, sample_tsv, out=None, *, dataset: str = "", label: str = "", mode: str = "") -> dict:
    """Truth vs corrected for the sampled entries, one panel per run, Pearson r (``sample_pearson``) in the title.

    Returns ``runs``, ``n_entries`` and ``sample_pearson`` per run.
    """
    truth = _read_truth(truth_tsv, ["sample_pearson"])
    sample = read_checked(sample_tsv, ["run", "truth", "corrected"])
    for col in ("truth", "corrected"):
        sample[col] = numeric(sample, col, sample_tsv)
    sample["run"] = sample["run"].astype(str)
    runs = _ordered_runs(sample)
    missing = [run for run in runs if run not in truth.index]
    if missing:
        raise InputError(truth_tsv, f"column run: no row for {', '.join(missing)} (present in {sample_tsv})")
    if not runs:
        raise InputError(sample_tsv, "no sampled entries")

    finite = sample[["truth", "corrected"]].to_numpy()
    finite = finite[np.isfinite(finite)]
    low, high = float(finite.min()), float(finite.max())
    pad = 0.03 * (high - low or 1.0)
    nrows, ncols = _grid_shape(len(runs), max_cols=4)
    fig, axes = new_figure(
        nrows, ncols, figsize=(2.9 * ncols, 2.9 * nrows + 0.6), squeeze=False, sharex=True, sharey=True
    )
    n_entries = {}
    for ax, run in zip(axes.ravel(), runs):
        part = sample[sample["run"] == run]
        n_entries[run] = len(part)
        ax.scatter(part["truth"], part["corrected"], s=1.5, lw=0, alpha=0.25, c=run_colour(run), rasterized=True)
        ax.plot([low, high], [low, high], color="black", lw=0.8, ls="--")
        r = truth.loc[run, "sample_pearson"]
        r_text = "r undefined" if np.isnan(r) else f"r = {r:.3f}"
        ax.set_title(f"{run_label(run)}\nPearson {r_text}", fontsize=9)
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(low - pad, high + pad)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3, lw=0.5)
    for ax in axes[-1]:
        ax.set_xlabel("true batch-free log expression")
    for ax in axes[:, 0]:
        ax.set_ylabel("corrected log expression")
    _hide_unused(axes, len(runs))
    sizes = sorted(set(n_entries.values()))
    set_title(
        fig,
        f"Corrected vs true values ({'/'.join(fmt_count(n) for n in sizes)} sampled entries per run; dashed: y = x)",
        dataset,
        label,
        mode,
    )
    savefig(fig, out)
    return {
        "runs": runs,
        "n_entries": n_entries,
        "sample_pearson": {run: float(truth.loc[run, "sample_pearson"]) for run in runs},
    }


def _bar_panels(axes, table: pd.DataFrame, panels, value_format: str = "{:.3g}", notes=None) -> None:
    """Horizontal bars, one per run (display order top to bottom), one panel per metric, values printed."""
    runs = list(table.index)
    ypos = np.arange(len(runs))[::-1]
    colours = [run_colour(run) for run in runs]
    for k, (ax, (col, title, unit_interval)) in enumerate(zip(axes, panels)):
        values = table[col].to_numpy(dtype=float)
        ax.barh(ypos, np.nan_to_num(values), color=colours, height=0.7, edgecolor="black", lw=0.4)
        finite = values[np.isfinite(values)]
        span = float(max(finite.max(), 0) - min(finite.min(), 0)) if finite.size else 1.0
        for y, v, run in zip(ypos, values, runs):
            text = "n/a" if np.isnan(v) else value_format.format(v)
            if notes and col in notes:
                text += notes[col](run)
            ax.text(max(v, 0) if np.isfinite(v) else 0, y, " " + text, va="center", ha="left", fontsize=7.5)
        if unit_interval:
            ax.set_xlim(min(0, finite.min() if finite.size else 0), 1.18)
        else:
            ax.set_xlim(min(0, finite.min() if finite.size else 0), (finite.max() if finite.size else 1) + 0.35 * span)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_title(title, fontsize=9.5)
        ax.grid(axis="x", alpha=0.3, lw=0.5)
        ax.set_yticks(ypos, [run_label(run) for run in runs] if k == 0 else [])
        ax.set_ylim(-0.6, len(runs) - 0.4)


_ACCURACY_PANELS = [
    ("pearson_median", "median per-gene Pearson r (↑)", False),
    ("pearson_median_batch_genes", "… over batch-affected genes (↑)", False),
    ("mse", "MSE over all entries (↓)", False),
    ("w1", "mean per-gene Wasserstein W1 (↓)", False),
]
_DE_PANELS = [
    ("de_precision", "precision (↑)", True),
    ("de_recall", "recall (↑)", True),
    ("de_f1", "F1 (↑)", True),
    ("de_auprc", "AUPRC (↑)", True),
]


@styled
def plot_truth_metrics(truth_tsv, out=None, *, dataset: str = "", label: str = "", mode: str = "") -> dict:
    """Bars of median per-gene Pearson (all genes and batch-affected genes), MSE and mean per-gene W1
    against the batch-free truth, per run.

    Returns ``runs`` and the four metrics per run.
    """
    cols = [col for col, _, _ in _ACCURACY_PANELS]
    truth = _read_truth(truth_tsv, cols)
    fig, axes = new_figure(1, len(_ACCURACY_PANELS), figsize=(14.0, 0.38 * len(truth) + 1.9))
    _bar_panels(axes, truth, _ACCURACY_PANELS)
    set_title(fig, f"Corrected values vs batch-free truth ({len(truth)} runs)", dataset, label, mode)
    savefig(fig, out)
    return {"runs": list(truth.index), **{col: truth[col].to_dict() for col in cols}}


@styled
def plot_de_recovery(truth_tsv, out=None, *, dataset: str = "", label: str = "", mode: str = "") -> dict:
    """Bars of DE precision, recall, F1 and AUPRC against the simulated DE genes, per run.

    The precision panel also prints each run's number of called genes. Returns ``runs``,
    ``n_de_true`` and the four metrics per run.
    """
    cols = [col for col, _, _ in _DE_PANELS]
    truth = _read_truth(truth_tsv, cols + ["n_de_called", "n_de_true"])
    fig, axes = new_figure(1, 4, figsize=(12.0, 0.38 * len(truth) + 1.9))
    called = truth["n_de_called"]
    notes = {"de_precision": lambda run: f" ({fmt_count(called[run])} called)" if np.isfinite(called[run]) else ""}
    _bar_panels(axes, truth, _DE_PANELS, value_format="{:.2f}", notes=notes)
    n_true = sorted({int(v) for v in truth["n_de_true"].dropna()})
    true_text = "/".join(fmt_count(n) for n in n_true) or "unknown"
    set_title(
        fig,
        f"Recovery of the {true_text} simulated DE genes (Wilcoxon per cell type on corrected values)",
        dataset,
        label,
        mode,
    )
    savefig(fig, out)
    return {"runs": list(truth.index), "n_de_true": n_true, **{col: truth[col].to_dict() for col in cols}}


# --------------------------------------------------------------------------------------------------------------------
# scIB table

SCIB_GROUPS = [
    (
        "Bio conservation",
        [
            ("isolated_labels", "Isolated\nlabels"),
            ("nmi", "NMI\n(Leiden)"),
            ("ari", "ARI\n(Leiden)"),
            ("silhouette_label", "Silhouette\nlabel"),
            ("clisi", "cLISI"),
        ],
    ),
    (
        "Batch correction",
        [
            ("silhouette_batch", "Silhouette\nbatch"),
            ("ilisi", "iLISI"),
            ("kbet", "kBET"),
            ("graph_connectivity", "Graph\nconnect."),
            ("pcr_comparison", "PCR\ncomparison"),
            ("bras", "BRAS*"),
        ],
    ),
    (
        "Aggregate scores",
        [
            ("bio_conservation", "Bio\nconservation"),
            ("batch_correction", "Batch\ncorrection"),
            ("total", "Total"),
            ("batch_correction_bras", "Batch\n(BRAS)*"),
            ("total_bras", "Total\n(BRAS)*"),
        ],
    ),
]
SCIB_CMAP = "viridis"


def _text_colour(rgba) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


@styled
def plot_scib_table(scib_tsv, out=None, *, dataset: str = "", label: str = "", mode: str = "") -> dict:
    """scIB results table: runs sorted by ``total`` (best at the top), metrics grouped Bio / Batch /
    aggregates, each cell coloured by its value on a 0-1 scale with the number printed.

    Returns ``runs`` in table order and ``total`` / ``total_bras`` per run.
    """
    metric_cols = [col for _, cols in SCIB_GROUPS for col, _ in cols]
    df = read_checked(scib_tsv, ["run"] + metric_cols)
    for col in metric_cols:
        df[col] = numeric(df, col, scib_tsv)
    df["run"] = df["run"].astype(str)
    if df.empty:
        raise InputError(scib_tsv, "no runs (expected one row per integration run)")
    # Ties (and NaN totals, last) keep the display order of run_order.
    df = df.set_index("run").loc[run_order(df["run"])]
    df = df.sort_values("total", ascending=False, kind="stable", na_position="last")

    n_rows = len(df)
    gap = 0.35  # horizontal space between groups, in cell widths
    x_positions, x = [], 0.0
    for _, cols in SCIB_GROUPS:
        for _ in cols:
            x_positions.append(x)
            x += 1.0
        x += gap
    label_width = 3.2
    fig, ax = new_figure(figsize=(0.62 * (x + label_width) + 1.2, 0.36 * n_rows + 2.3))
    cmap = plt.get_cmap(SCIB_CMAP)
    norm = Normalize(0.0, 1.0)
    for i, (run, row) in enumerate(df.iterrows()):
        y = n_rows - 1 - i
        for xpos, col in zip(x_positions, metric_cols):
            value = row[col]
            if np.isnan(value):
                face, text, colour = "#E0E0E0", "–", "#555555"
            else:
                face = cmap(norm(value))
                text, colour = f"{value:.2f}", _text_colour(face)
            ax.add_patch(Rectangle((xpos, y), 1, 1, facecolor=face, edgecolor="white", lw=1.2))
            weight = "bold" if col == "total" else "normal"
            ax.text(xpos + 0.5, y + 0.5, text, ha="center", va="center", fontsize=8, color=colour, fontweight=weight)
        capped = str(row.get("note", "")).startswith("capped")  # trained below its developers' epoch rule
        ax.text(-0.15, y + 0.5, run_label(run) + (" [capped]" if capped else ""), ha="right", va="center", fontsize=9)
    start = 0
    for group, cols in SCIB_GROUPS:
        xs = x_positions[start : start + len(cols)]
        start += len(cols)
        for xpos, (_, header) in zip(xs, cols):
            ax.text(xpos + 0.5, n_rows + 0.15, header, ha="center", va="bottom", fontsize=7.5, rotation=0)
        ax.plot([xs[0] + 0.05, xs[-1] + 0.95], [n_rows + 1.25] * 2, color="black", lw=0.8)
        ax.text((xs[0] + xs[-1] + 1) / 2, n_rows + 1.35, group, ha="center", va="bottom", fontsize=9.5)
    ax.set_xlim(-label_width, x)
    ax.set_ylim(-0.1, n_rows + 2.0)
    ax.axis("off")
    fig.colorbar(
        plt.cm.ScalarMappable(norm=norm, cmap=cmap),
        ax=ax,
        orientation="horizontal",
        location="bottom",
        shrink=0.35,
        aspect=30,
        pad=0.02,
        label="score (0 worst, 1 best; no min-max scaling)",
    )
    set_title(fig, f"scIB metrics, runs sorted by total ({n_rows} runs)", dataset, label, mode)
    add_note(
        fig,
        "Batch correction = mean of silhouette batch (classic), iLISI, kBET, graph connectivity, PCR comparison; "
        "Total = 0.6 Bio + 0.4 Batch. * BRAS (scib-metrics' default batch score since 0.5.6) is not in Batch or "
        "Total; Batch (BRAS) and Total (BRAS) use it in place of the batch silhouette, as the Benchmarker reports.",
    )
    savefig(fig, out)
    return {
        "runs": list(df.index),
        "total": df["total"].to_dict(),
        "total_bras": df["total_bras"].to_dict(),
    }


__all__ = [
    "CAPTIONS",
    "SCIB_GROUPS",
    "level_colours",
    "natural_key",
    "plot_de_recovery",
    "plot_scib_table",
    "plot_truth_metrics",
    "plot_truth_scatter",
    "plot_umaps",
    "plot_value_histograms",
    "run_colour",
    "run_label",
    "run_order",
]
