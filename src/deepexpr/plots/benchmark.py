"""Figures of the benchmark scores with spread over seeds: scIB per method (every seed and mean ± sd),
biology kept against the scIB total (nested designs), and the explanation baseline against Integrated
Gradients (docs/evaluation.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepexpr.errors import InputError
from deepexpr.evaluate.integration import method_group
from deepexpr.plots.integration import run_colour, run_label, run_order
from deepexpr.registry import parse_run
from deepexpr.plots.style import (
    FIGSIZE_SINGLE,
    FIGSIZE_WIDE,
    NEUTRAL_COLOUR,
    add_note,
    new_figure,
    numeric,
    read_checked,
    savefig,
    set_title,
    styled,
)

CAPTIONS = {
    "scib_seeds": "scIB bio conservation, batch correction and total per method and mode: every seed as a dot, "
    "the mean as a bar with ± 1 sd over seeds (no bar when a method ran once: deterministic or a single seed). "
    "The dashed line is the batch-free truth scored the same way. Runs labelled 'capped' trained fewer epochs "
    "than their developers' rule.",
    "biology_kept": "Biology kept against batch removal on a nested design (donors within conditions): the x axis "
    "is each run's scIB total, the y axis the AUPRC of its donor-pseudobulk condition DE (pyDESeq2 per cell type, "
    "critical vs healthy, mean -log10 p over cell types) for the simulated condition-affected genes. Dots are "
    "seeds, crosses the mean ± sd per method; the dotted line is chance (the share of affected genes). Harmony "
    "and Scanorama output no values: theirs are neighbourhood means in their embedding.",
    "explain_auroc": "Recovery of the genes each simulated covariate touched: AUROC of the GENEX critic's "
    "Integrated-Gradients attributions (mean |attribution|) beside a plain per-gene Wilcoxon test between the "
    "covariate's levels (largest |z| over levels) on the same log-normalised values. 0.5 = chance.",
}


def _group_label(run: str, note: str = "") -> str:
    """``GENEX (corrected)``, ``scVI (recommended) [capped]``, ``ComBat``: a method and mode over its seeds."""
    parsed = parse_run(run)
    label = f"{parsed[0].label} ({parsed[1]})" if parsed is not None and parsed[0].modes else run_label(run)
    return label + (" [capped]" if str(note).startswith("capped") else "")


def _groups(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Runs grouped by method and mode, in display order (truth rows left out)."""
    df = df[df["run"].astype(str) != "truth"]
    order = run_order(df["run"])
    df = df.set_index("run").loc[order].reset_index()
    df["group"] = [method_group(m, o) for m, o in zip(df["method"], df["mode"])]
    return [(group, part) for group, part in df.groupby("group", sort=False)]


@styled
def plot_scib_seeds(scib_tsv, out=None, *, dataset: str = "", label: str = "", mode: str = "") -> dict:
    """Bio / batch / total per method and mode with every seed; returns mean and sd of total per group."""
    columns = ["bio_conservation", "batch_correction", "total"]
    df = read_checked(scib_tsv, ["run", "method", "mode", "seed", *columns])
    for column in columns:
        df[column] = numeric(df, column, scib_tsv)
    if "note" not in df:
        df["note"] = ""
    truth = df[df["run"].astype(str) == "truth"]
    groups = _groups(df)
    if not groups:
        raise InputError(scib_tsv, "no integration runs")
    fig, axes = new_figure(1, 3, figsize=FIGSIZE_WIDE, sharey=True)
    numbers = {"mean": {}, "sd": {}, "n_seeds": {}}
    y = np.arange(len(groups))[::-1]
    for ax, column in zip(axes, columns):
        for yi, (group, part) in zip(y, groups):
            values = part[column].to_numpy(dtype=float)
            colour = run_colour(part["run"].iloc[0])
            mean, sd = float(np.nanmean(values)), float(np.nanstd(values, ddof=1)) if len(values) > 1 else np.nan
            ax.barh(yi, mean, color=colour, alpha=0.35, height=0.6)
            if np.isfinite(sd):
                ax.errorbar(mean, yi, xerr=sd, color="black", capsize=3, lw=1)
            ax.scatter(values, np.full(len(values), yi), color=colour, s=16, zorder=3, edgecolor="white", lw=0.5)
            if column == "total":
                numbers["mean"][group], numbers["sd"][group], numbers["n_seeds"][group] = mean, sd, len(values)
        if len(truth):
            ax.axvline(float(truth[column].iloc[0]), color="black", ls="--", lw=1, label="batch-free truth")
        ax.set_xlabel(column.replace("_", " "))
        ax.set_xlim(0, 1)
    axes[0].set_yticks(y, [_group_label(part["run"].iloc[0], part["note"].fillna("").iloc[0]) for _, part in groups])
    if len(truth):
        axes[-1].legend(loc="lower right", fontsize=7.5)
    set_title(fig, "scIB scores per method: seeds and mean ± sd", dataset, label, mode)
    savefig(fig, out)
    return numbers


@styled
def plot_biology_kept(table_tsv, out=None, *, dataset: str = "", label: str = "", mode: str = "") -> dict:
    """scIB total (x) against biology-kept AUPRC (y) per run, mean ± sd per method; returns the group means."""
    df = read_checked(table_tsv, ["run", "method", "mode", "seed", "total", "biology_kept_auprc", "chance_auprc"])
    for column in ("total", "biology_kept_auprc", "chance_auprc"):
        df[column] = numeric(df, column, table_tsv)
    if "note" not in df:
        df["note"] = ""
    groups = _groups(df)
    if not groups:
        raise InputError(table_tsv, "no integration runs")
    fig, ax = new_figure(figsize=(FIGSIZE_SINGLE[0] + 1.6, FIGSIZE_SINGLE[1]))
    numbers = {"total_mean": {}, "auprc_mean": {}, "auprc_sd": {}}
    for group, part in groups:
        colour = run_colour(part["run"].iloc[0])
        x, yv = part["total"].to_numpy(float), part["biology_kept_auprc"].to_numpy(float)
        ax.scatter(x, yv, color=colour, s=22, alpha=0.7, edgecolor="white", lw=0.5)
        sd_x = np.nanstd(x, ddof=1) if len(x) > 1 else 0.0
        sd_y = np.nanstd(yv, ddof=1) if len(yv) > 1 else 0.0
        ax.errorbar(np.nanmean(x), np.nanmean(yv), xerr=sd_x, yerr=sd_y, color=colour, marker="X", ms=8, capsize=3,
                    label=_group_label(part["run"].iloc[0], part["note"].fillna("").iloc[0]))
        numbers["total_mean"][group] = float(np.nanmean(x))
        numbers["auprc_mean"][group] = float(np.nanmean(yv))
        numbers["auprc_sd"][group] = float(sd_y) if len(yv) > 1 else float("nan")
    ax.axhline(float(df["chance_auprc"].iloc[0]), color=NEUTRAL_COLOUR, ls=":", lw=1, label="chance")
    ax.set_xlabel("scIB total (batch removal + cell-type conservation)")
    ax.set_ylabel("biology kept: condition DE AUPRC")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    set_title(fig, "Condition signal kept against scIB total", dataset, label, mode)
    add_note(fig, "Up = more of the simulated condition effect survives the correction; right = better scIB total.")
    savefig(fig, out)
    return numbers


@styled
def plot_explain_auroc(auroc_tsv, out=None, *, dataset: str = "", label: str = "", mode: str = "") -> dict:
    """AUROC per covariate of Integrated Gradients and the Wilcoxon baseline; returns them."""
    df = read_checked(auroc_tsv, ["covariate", "method", "auroc"])
    df["auroc"] = numeric(df, "auroc", auroc_tsv)
    wide = df.pivot(index="covariate", columns="method", values="auroc").reindex(list(dict.fromkeys(df["covariate"])))
    methods = [m for m in ("integrated_gradients", "wilcoxon") if m in wide.columns]
    fig, ax = new_figure(figsize=FIGSIZE_SINGLE)
    width = 0.38
    colours = {"integrated_gradients": "#0072B2", "wilcoxon": "#E69F00"}
    names = {"integrated_gradients": "Integrated Gradients (GENEX critic)", "wilcoxon": "Wilcoxon between levels"}
    x = np.arange(len(wide))
    for i, method in enumerate(methods):
        values = wide[method].to_numpy(float)
        ax.bar(x + (i - 0.5) * width, values, width, color=colours[method], label=names[method])
        for xi, value in zip(x, values):
            ax.text(xi + (i - 0.5) * width, value + 0.01, f"{value:.2f}", ha="center", va="bottom", fontsize=7.5)
    ax.axhline(0.5, color=NEUTRAL_COLOUR, ls=":", lw=1)
    ax.set_xticks(x, list(wide.index))
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("AUROC for the simulated affected genes")
    ax.legend(fontsize=7.5, loc="lower right")
    set_title(fig, "Explanation vs a plain per-gene test", dataset, label, mode)
    savefig(fig, out)
    return {method: wide[method].to_dict() for method in methods}


__all__ = ["CAPTIONS", "plot_biology_kept", "plot_explain_auroc", "plot_scib_seeds"]
