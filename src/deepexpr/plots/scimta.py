"""scIMTA study figures: UMAP by predicted and true labels, ARI/NMI bars, gene-community heatmap,
imputation error, hyper-parameter sensitivity. Each reads the study's tables (docs/outputs.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepexpr.plots.style import new_figure, read_checked, savefig, set_title, styled


@styled
def plot_scimta_umap(cells_path, out=None, dataset: str = ""):
    cells = read_checked(cells_path, ["umap1", "umap2", "cluster", "cell_type"])
    fig, axes = new_figure(1, 2, figsize=(9.5, 4.2))
    for ax, column, title in zip(axes, ["cluster", "cell_type"], ["scIMTA clusters", "true cell types"]):
        for name, group in cells.groupby(cells[column].astype(str), sort=True):
            ax.scatter(group["umap1"], group["umap2"], s=3, label=name, rasterized=True)
        ax.set_title(title)
        ax.set_xticks([]), ax.set_yticks([])
        ax.legend(markerscale=3, fontsize=6, frameon=False, loc="center left", bbox_to_anchor=(1, 0.5), ncol=1 + len(ax.collections) // 12)
    set_title(fig, "UMAP of the scIMTA embedding z", dataset)
    savefig(fig, out)
    return {"cells": len(cells)}


@styled
def plot_scimta_scores(scores_path, out=None, dataset: str = ""):
    scores = read_checked(scores_path, ["method", "selection", "ari", "nmi"])
    labels = scores["method"] + np.where(scores["selection"] == "oracle", " (oracle)", "")
    fig, axes = new_figure(1, 2, figsize=(9.5, 3.6))
    for ax, metric in zip(axes, ["ari", "nmi"]):
        colours = np.where(scores["selection"] == "oracle", "#BBBBBB", "#0072B2")
        ax.barh(labels, scores[metric], color=colours)
        ax.set_xlabel(metric.upper()), ax.set_xlim(0, 1)
        ax.invert_yaxis()
    set_title(fig, "Clustering against cell labels (grey: label-informed oracle rows)", dataset)
    savefig(fig, out)
    return dict(zip(labels, scores["ari"]))


@styled
def plot_community_heatmap(scores_path, out=None, dataset: str = ""):
    table = pd.read_csv(scores_path, sep="\t", index_col=0)
    fig, ax = new_figure(figsize=(max(4.5, 0.45 * table.shape[1] + 2), max(3, 0.3 * table.shape[0] + 1.5)))
    limit = float(np.nanmax(np.abs(table.to_numpy()))) if table.size else 1.0
    image = ax.imshow(table.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(table.shape[0]), table.index, fontsize=7)
    fig.colorbar(image, ax=ax, label="mean z-scored expression")
    set_title(fig, "Gene communities per scIMTA cell cluster", dataset)
    savefig(fig, out)
    return {"clusters": table.shape[0], "communities": table.shape[1]}


@styled
def plot_imputation(table_path, out=None, dataset: str = ""):
    table = read_checked(table_path, ["scenario", "genes", "values", "median_gene_pearson", "mse"])
    table = table.assign(group=table["scenario"] + " (" + table["genes"] + " genes)")
    groups = list(dict.fromkeys(table["group"]))
    shown = [(name, colour) for name, colour in (("observed", "#999999"), ("zero_fill", "#0072B2"), ("alra", "#D55E00")) if name in set(table["values"])]
    width = 0.8 / len(shown)
    fig, axes = new_figure(1, 2, figsize=(12, 4.2))
    for ax, metric, label in zip(axes, ["median_gene_pearson", "mse"], ["median per-gene Pearson r", "MSE"]):
        for number, (name, colour) in enumerate(shown):
            values = [table[(table["group"] == g) & (table["values"] == name)][metric].iloc[0] for g in groups]
            ax.bar(np.arange(len(groups)) + (number - (len(shown) - 1) / 2) * width, values, width, color=colour, label=name)
        ax.set_xticks(range(len(groups)), groups, rotation=35, ha="right", fontsize=7)
        ax.set_ylabel(label)
    axes[0].legend(frameon=False)
    set_title(fig, "Imputation vs none, against the simulated true counts (r: higher is better; MSE: lower is better)", dataset)
    savefig(fig, out)
    return {}


@styled
def plot_search(table_path, out=None, dataset: str = ""):
    table = pd.read_csv(table_path, sep="\t")
    parameters = [c for c in table.columns if c not in ("silhouette", "ari", "nmi", "n_clusters", "chosen")]
    labels = table[parameters].astype(str).agg(", ".join, axis=1) if parameters else table.index.astype(str)
    fig, ax = new_figure(figsize=(6.5, 0.35 * len(table) + 1.8))
    y = np.arange(len(table))
    ax.barh(y - 0.2, table["silhouette"], 0.4, label="silhouette (objective)", color="#0072B2")
    if "ari" in table:
        ax.barh(y + 0.2, table["ari"], 0.4, label="ARI (reported only)", color="#BBBBBB")
    ax.set_yticks(y, [("* " if chosen else "") + label for chosen, label in zip(table["chosen"], labels)], fontsize=7)
    ax.set_xlabel("score"), ax.invert_yaxis(), ax.legend(frameon=False, fontsize=7)
    set_title(fig, f"Hyper-parameter sensitivity ({', '.join(parameters)}; * = chosen)", dataset)
    savefig(fig, out)
    return {"points": len(table)}
