"""GENEX explanation figures drawn from ``results/{dataset}/explain/``: heatmap and dot plot of the
top Integrated-Gradients genes per covariate level and cell type, and the per-cell completeness check.

Every function reads the result tables the workflow wrote (schemas in the project contracts),
computes every number it shows from them, draws one figure (into ``ax``/``fig`` when given), writes
it to ``out`` when given (PNG, or SVG/PDF by suffix) and returns it, with those numbers in
``figure.numbers`` so callers and tests can check them (:func:`deepexpr.plots.style.styled`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.ticker import FuncFormatter

from deepexpr.errors import InputError
from deepexpr.io import read_json
from deepexpr.plots.integration import natural_key
from deepexpr.plots.style import (
    PALETTE,
    add_note,
    boolean,
    fmt_count,
    new_figure,
    numeric,
    plt,
    read_checked,
    savefig,
    set_title,
    styled,
)

CAPTIONS = {
    "explain_heatmap": "Integrated-Gradients attributions of the GENEX critic's head for this covariate (critic in "
    "eval mode, per-cell target = the cell's own level, baseline and step count in the rule's summary file): mean "
    "signed attribution of the top genes per covariate level, in each cell type and over all cells. On simulated "
    "data the title gives the AUROC of the gene ranking against the genes the simulated effect touched.",
    "explain_dotplot": "The top-attributed genes of each covariate level across cell types: dot size = mean absolute "
    "attribution, colour = mean signed attribution (Integrated Gradients on the GENEX critic's covariate head).",
    "explain_completeness": "Completeness check of Integrated Gradients per explained cell: |sum of attributions - "
    "(F(x) - F(baseline))| relative to |F(x) - F(baseline)|. Cells above 5 % (dashed line) are flagged in the cell "
    "table; more steps reduce the gap.",
}

ALL_CELLS = "all"  # the cell_type value of the rows that aggregate over every cell
ATTRIBUTION_CMAP = "RdBu_r"
_GENE_COLUMNS = ["covariate", "level", "cell_type", "gene", "attribution", "abs_attribution", "rank", "n_cells"]
_CELL_COLUMNS = ["cell", "level", "relative_delta", "flagged"]


def _read_attributions(genes_tsv) -> tuple[pd.DataFrame, str]:
    df = read_checked(genes_tsv, _GENE_COLUMNS)
    for col in ("attribution", "abs_attribution", "rank", "n_cells"):
        df[col] = numeric(df, col, genes_tsv)
    for col in ("covariate", "level", "cell_type", "gene"):
        df[col] = df[col].astype(str)
    covariates = df["covariate"].unique()
    if len(covariates) != 1:
        found = ", ".join(covariates) if len(covariates) else "no rows"
        raise InputError(genes_tsv, f"column covariate: expected one covariate per file, found {found}")
    return df, str(covariates[0])


def _levels(df: pd.DataFrame) -> list[str]:
    return sorted(df["level"].unique(), key=natural_key)


def _cell_types(df: pd.DataFrame) -> list[str]:
    """``all`` first, then the cell types in sorted order."""
    types = sorted(set(df["cell_type"]) - {ALL_CELLS}, key=natural_key)
    return ([ALL_CELLS] if (df["cell_type"] == ALL_CELLS).any() else []) + types


def top_genes(df: pd.DataFrame, level: str, top: int) -> list[str]:
    """The ``top`` genes of ``level``: by rank over all cells, else by mean |attribution| over cell types."""
    part = df[df["level"] == level]
    overall = part[part["cell_type"] == ALL_CELLS]
    if not overall.empty:
        return list(overall.sort_values(["rank", "gene"], kind="stable")["gene"].head(top))
    strength = part.groupby("gene")["abs_attribution"].mean().sort_values(ascending=False, kind="stable")
    return list(strength.index[:top])


def _covariate_summary(summary_json, covariate: str) -> dict:
    """The covariate's entry of summary.json (keyed by covariate), or the whole file if it is one covariate's."""
    summary = read_json(summary_json)
    if not isinstance(summary, dict):
        raise InputError(summary_json, "expected a JSON object")
    entry = summary.get(covariate)
    return entry if isinstance(entry, dict) else summary


def _symmetric_norm(values: np.ndarray) -> TwoSlopeNorm:
    finite = np.abs(values[np.isfinite(values)])
    bound = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound)


@styled
def plot_explain_heatmap(
    genes_tsv,
    out=None,
    top: int = 10,
    summary_json=None,
    *,
    dataset: str = "",
    label: str = "",
    mode: str = "",
) -> dict:
    """Mean signed attribution of each level's top ``top`` genes (rows), per level (panel) and cell
    type (column, ``all`` first); a dot marks genes that are also in that cell type's own top ``top``.

    With ``summary_json`` holding ``auroc_vs_truth`` for the covariate (simulated data), the AUROC
    is shown in the title. Returns ``covariate``, ``levels``, ``genes`` (row order), ``cell_types``
    and ``auroc_vs_truth`` (None when absent).
    """
    df, covariate = _read_attributions(genes_tsv)
    levels, cell_types = _levels(df), _cell_types(df)
    blocks = [(level, top_genes(df, level, top)) for level in levels]
    genes, block_ends = [], []
    for _, block in blocks:  # a gene already shown for an earlier level is not repeated
        genes += [gene for gene in block if gene not in genes]
        block_ends.append(len(genes))
    auroc = _covariate_summary(summary_json, covariate).get("auroc_vs_truth") if summary_json else None

    matrices = {}
    for level in levels:
        part = df[df["level"] == level]
        matrices[level] = (
            part.pivot_table(index="gene", columns="cell_type", values="attribution", aggfunc="first").reindex(
                index=genes, columns=cell_types
            ),
            part.pivot_table(index="gene", columns="cell_type", values="rank", aggfunc="first").reindex(
                index=genes, columns=cell_types
            ),
        )
    norm = _symmetric_norm(np.concatenate([m.to_numpy(dtype=float).ravel() for m, _ in matrices.values()]))
    cmap = plt.get_cmap(ATTRIBUTION_CMAP).with_extremes(bad="#E6E6E6")

    width = min(26.0, 0.24 * len(cell_types) * len(levels) + 0.5 * len(levels) + 3.0)
    height = min(30.0, 0.19 * len(genes) + 2.6)
    fig, axes = new_figure(1, len(levels), figsize=(width, height), sharey=True, squeeze=False)
    for ax, level in zip(axes[0], levels):
        values, ranks = matrices[level]
        image = ax.imshow(np.ma.masked_invalid(values.to_numpy(dtype=float)), cmap=cmap, norm=norm, aspect="auto")
        rows, cols = np.nonzero(ranks.to_numpy(dtype=float) <= top)
        ax.scatter(cols, rows, s=4, c="black", marker="o", lw=0)
        ax.set_xticks(range(len(cell_types)), cell_types, rotation=90, fontsize=7.5)
        ax.set_title(f"{covariate} = {level}", fontsize=9.5)
        for boundary in block_ends[:-1]:
            ax.axhline(boundary - 0.5, color="black", lw=0.8)
    axes[0, 0].set_yticks(range(len(genes)), genes, fontsize=7.5)
    axes[0, 0].set_ylabel("top genes of each level (blocks in panel order)")
    fig.colorbar(image, ax=axes[0, -1], shrink=min(0.8, 4.0 / height + 0.2), label="mean attribution (signed)")
    auroc_text = f"; AUROC vs simulated truth = {auroc:.3f}" if isinstance(auroc, (int, float)) else ""
    set_title(
        fig,
        f"GENEX Integrated Gradients for covariate '{covariate}': top {top} genes per level{auroc_text}",
        dataset,
        label,
        mode,
    )
    add_note(
        fig,
        f"Rows: the top {top} genes of each level over all cells, blocks separated by lines; black dot: the gene is "
        f"also in that cell type's own top {top}; grey: not in the table.",
    )
    savefig(fig, out)
    return {
        "covariate": covariate,
        "levels": levels,
        "genes": genes,
        "cell_types": cell_types,
        "auroc_vs_truth": auroc if isinstance(auroc, (int, float)) else None,
    }


@styled
def plot_explain_dotplot(genes_tsv, out=None, top: int = 5, *, dataset: str = "", label: str = "", mode: str = "") -> dict:
    """Dot plot: cell types (rows) x the top ``top`` genes of each level (columns, grouped by level);
    size = mean |attribution|, colour = mean signed attribution toward that level.

    Returns ``covariate``, ``levels``, ``columns`` as (level, gene) pairs and ``cell_types``.
    """
    df, covariate = _read_attributions(genes_tsv)
    levels, cell_types = _levels(df), _cell_types(df)
    columns = [(level, gene) for level in levels for gene in top_genes(df, level, top)]
    indexed = df.drop_duplicates(["level", "cell_type", "gene"]).set_index(["level", "cell_type", "gene"])
    keys = pd.MultiIndex.from_tuples([(lvl, ct, gene) for ct in cell_types for lvl, gene in columns])
    shown = indexed.reindex(keys)
    xs = np.tile(np.arange(len(columns)), len(cell_types))
    ys = np.repeat(np.arange(len(cell_types)), len(columns))
    signed = shown["attribution"].to_numpy(dtype=float)
    size_source = shown["abs_attribution"].to_numpy(dtype=float)
    size_max = np.nanmax(size_source) if np.isfinite(size_source).any() else 1.0
    size_max = size_max if size_max > 0 else 1.0
    sizes = 8 + 160 * np.nan_to_num(size_source) / size_max
    present = np.isfinite(signed)

    fig, ax = new_figure(figsize=(min(26.0, 0.32 * len(columns) + 3.6), min(20.0, 0.33 * len(cell_types) + 2.8)))
    points = ax.scatter(
        xs[present],
        ys[present],
        s=sizes[present],
        c=signed[present],
        cmap=ATTRIBUTION_CMAP,
        norm=_symmetric_norm(signed),
        edgecolors="#333333",
        lw=0.4,
    )
    ax.set_xticks(range(len(columns)), [gene for _, gene in columns], rotation=90, fontsize=7.5)
    ax.set_yticks(range(len(cell_types)), cell_types, fontsize=8)
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(len(cell_types) - 0.4, -1.4)  # first cell type ("all") at the top, room for the level brackets
    start = 0
    for level in levels:
        n = sum(1 for lvl, _ in columns if lvl == level)
        if n:
            ax.plot([start - 0.3, start + n - 0.7], [-0.75, -0.75], color="black", lw=0.8)
            ax.text(start + (n - 1) / 2, -0.85, str(level), ha="center", va="bottom", fontsize=8.5)
            if start:
                ax.axvline(start - 0.5, color="#BBBBBB", lw=0.6)
        start += n
    ax.grid(alpha=0.25, lw=0.4)
    ax.spines[["top", "right"]].set_visible(False)
    fig.colorbar(points, ax=ax, shrink=0.6, pad=0.01, label="mean attribution (signed)")
    for fraction in (0.25, 0.5, 1.0):
        ax.scatter(
            [], [], s=8 + 160 * fraction, c="#999999", edgecolors="#333333", lw=0.4, label=f"{fraction * size_max:.2g}"
        )
    fig.legend(title="mean |attribution|", loc="outside lower center", ncols=3, columnspacing=2.0)
    set_title(
        fig,
        f"GENEX Integrated Gradients for covariate '{covariate}': top {top} genes per level across cell types",
        dataset,
        label,
        mode,
    )
    savefig(fig, out)
    return {"covariate": covariate, "levels": levels, "columns": columns, "cell_types": cell_types}


@styled
def plot_explain_completeness(
    cells_tsv,
    out=None,
    threshold: float = 0.05,
    covariate: str = "",
    *,
    dataset: str = "",
    label: str = "",
    mode: str = "",
) -> dict:
    """Histogram of the per-cell relative completeness gap (in %), stacked by level, with the flag line.

    ``relative_delta`` is a fraction (0.05 = 5 %); the number flagged is the count of the cell
    table's ``flagged`` column. A log x-axis is used when the positive gaps span more than two
    decades. Returns ``n_cells``, ``n_flagged``, ``n_above_threshold``, ``n_undefined`` and
    ``median_relative_delta``.
    """
    df = read_checked(cells_tsv, _CELL_COLUMNS)
    gap = numeric(df, "relative_delta", cells_tsv) * 100.0
    flagged = boolean(df, "flagged", cells_tsv, na_as=False)
    df["level"] = df["level"].astype(str)
    if df.empty:
        raise InputError(cells_tsv, "no cells (expected one row per explained cell)")
    defined = gap.notna().to_numpy()
    values = gap[defined].to_numpy()
    line = threshold * 100.0
    positive = values[values > 0]
    log_x = positive.size > 0 and positive.max() / positive.min() > 100

    fig, ax = new_figure(figsize=(6.6, 4.4))
    levels = sorted(df["level"].unique(), key=natural_key)
    per_level = [values[(df.loc[defined, "level"] == level).to_numpy()] for level in levels]
    if log_x:
        bins = np.geomspace(positive.min(), max(positive.max(), line * 1.05), 50)
        per_level = [v[v > 0] for v in per_level]
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    else:
        bins = np.linspace(0.0, max(values.max() if values.size else 0.0, line * 1.1), 50)
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(levels))]
    ax.hist(per_level, bins=bins, stacked=True, color=colours, label=levels, edgecolor="white", lw=0.3)
    ax.axvline(line, color="black", ls="--", lw=1.0, label=f"flag threshold {line:g} %")
    n_flagged, n_above = int(flagged.sum()), int((values > line).sum())
    ax.text(
        0.97,
        0.95,
        f"flagged: {fmt_count(n_flagged)} of {fmt_count(len(df))} cells ({100 * n_flagged / len(df):.1f} %)",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=8.5,
        bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#BBBBBB"},
    )
    ax.set_xlabel("relative completeness gap |Σ attribution − (F(x) − F(baseline))| / |F(x) − F(baseline)| (%)")
    ax.set_ylabel("cells")
    ax.legend(title=f"{covariate or 'covariate'} level" if len(levels) > 1 else None, loc="upper left", fontsize=8)
    ax.grid(alpha=0.3, lw=0.5)
    what = f"covariate '{covariate}'" if covariate else Path(cells_tsv).name
    set_title(fig, f"Integrated Gradients completeness per cell: {what}", dataset, label, mode)
    notes = []
    n_undefined = int((~defined).sum())
    if n_undefined:
        notes.append(f"{fmt_count(n_undefined)} cells with F(x) = F(baseline) have no relative gap and are not shown.")
    if log_x and (values <= 0).any():
        notes.append(f"{fmt_count(int((values <= 0).sum()))} cells with a gap of exactly 0 are not shown (log axis).")
    if n_above != n_flagged:
        notes.append(f"{fmt_count(n_above)} cells lie above the line; the count above is the file's flagged column.")
    if notes:
        add_note(fig, " ".join(notes))
    savefig(fig, out)
    return {
        "n_cells": len(df),
        "n_flagged": n_flagged,
        "n_above_threshold": n_above,
        "n_undefined": n_undefined,
        "median_relative_delta": float(np.median(values)) / 100.0 if values.size else float("nan"),
    }


__all__ = [
    "ALL_CELLS",
    "CAPTIONS",
    "plot_explain_completeness",
    "plot_explain_dotplot",
    "plot_explain_heatmap",
    "top_genes",
]
