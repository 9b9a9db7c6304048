"""siVAE study figures, drawn from the tables and AnnData files the study's rules wrote.

Cell and gene embedding scatters, loading-agreement and neighbourhood-Jaccard heatmaps, hub score
against per-gene variance explained, and kNN accuracy bars.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from deepexpr.plots.style import FIGSIZE_SINGLE, HIGHLIGHT_COLOUR, NEUTRAL_COLOUR, PALETTE, UP_COLOUR, savefig

CAPTIONS = {
    "sivae_cells": "siVAE's cell embedding (posterior means of z), coloured by cell type.",
    "sivae_genes": "siVAE's gene embedding (posterior means of v), coloured by planted module or marker gene.",
    "sivae_agreement": "|Spearman| of each method's gene loadings with siVAE's, per latent dimension (matched one to one).",
    "sivae_hubs": "siVAE's reconstruction hub score against the share of each gene's variance PCA explains.",
    "sivae_jaccard": "Mean Jaccard index of the top-k gene neighbourhoods of every pair of methods.",
    "sivae_knn": "5-fold kNN accuracy on cell types of each cell embedding (bars: seed mean; dots: seeds).",
}


def two_dimensions(values) -> tuple[np.ndarray, tuple[str, str]]:
    """The embedding itself when it has two dimensions, else its first two principal components."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[1] <= 2:
        return values, ("dim 1", "dim 2")
    return PCA(n_components=2, random_state=0).fit_transform(values), ("PC1 of the embedding", "PC2")


def _groups_scatter(ax, xy, groups, background: str | None) -> None:
    groups = pd.Series(groups, dtype=str).to_numpy()
    rest = groups == background
    if rest.any():
        ax.scatter(*xy[rest].T, s=4, color="#D0D0D0", label=background, rasterized=True)
    for i, group in enumerate(sorted(set(groups[~rest]))):
        mask = groups == group
        ax.scatter(*xy[mask].T, s=10, color=PALETTE[i % len(PALETTE)], label=group, rasterized=True)
    ax.legend(markerscale=2, fontsize=7, frameon=False, loc="best")


def plot_cell_embedding(embedding, cell_types, out: str | os.PathLike | None = None):
    fig, ax = plt.subplots(figsize=FIGSIZE_SINGLE)
    xy, labels = two_dimensions(embedding)
    _groups_scatter(ax, xy, cell_types, background=None)
    ax.set(title="siVAE cell embedding (z)", xlabel=labels[0], ylabel=labels[1])
    savefig(fig, out)
    return fig


def gene_groups(genes, truth_var: pd.DataFrame | None, markers) -> tuple[np.ndarray, str]:
    """Each gene's colour group: planted module (and hub) on simulated data, else the marker's own name."""
    genes = np.asarray(genes, dtype=str)
    if truth_var is not None:
        module = truth_var.loc[genes, "module"].to_numpy()
        groups = np.where(module >= 0, np.char.add("module ", module.astype(str)), "other")
        hubs = truth_var.loc[genes, "hub_gene"].astype(bool).to_numpy()
        return np.where(hubs, np.char.add(groups.astype(str), " (hub)"), groups), "planted modules"
    return np.where(np.isin(genes, list(markers)), genes, "other"), "marker genes"


def plot_gene_embedding(loadings, genes, truth_var=None, markers=(), out: str | os.PathLike | None = None):
    groups, what = gene_groups(genes, truth_var, markers)
    fig, ax = plt.subplots(figsize=FIGSIZE_SINGLE)
    xy, labels = two_dimensions(loadings)
    _groups_scatter(ax, xy, groups, background="other")
    ax.set(title=f"siVAE gene embedding (v), {what}", xlabel=labels[0], ylabel=labels[1])
    savefig(fig, out)
    return fig


def _heatmap(ax, matrix: pd.DataFrame, title: str, label: str) -> None:
    image = ax.imshow(matrix.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    for (i, j), value in np.ndenumerate(matrix.to_numpy(dtype=float)):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.6 else "black")
    ax.set_title(title)
    plt.colorbar(image, ax=ax, label=label)


def plot_agreement(agreement: pd.DataFrame, out: str | os.PathLike | None = None):
    """Heatmap of the agreement table (method x siVAE dimension); row labels carry each method's seconds."""
    seconds = agreement.groupby("method", sort=False)["seconds"].first()
    matrix = agreement.pivot(index="method", columns="dimension", values="abs_spearman").loc[seconds.index]
    matrix.index = [f"{method} ({value:.1f} s)" for method, value in seconds.items()]
    fig, ax = plt.subplots(figsize=(1.5 + 0.6 * matrix.shape[1], 1.5 + 0.5 * len(matrix)))
    _heatmap(ax, matrix, f"|Spearman| with siVAE loadings ({agreement['reference_seconds'].iloc[0]:.1f} s)", "|Spearman|")
    ax.set_xlabel("siVAE dimension (the other method's matched one to one)")
    savefig(fig, out)
    return fig


def plot_jaccard(jaccard: pd.DataFrame, out: str | os.PathLike | None = None):
    order = list(dict.fromkeys(jaccard["method_a"]))
    matrix = jaccard.pivot(index="method_a", columns="method_b", values="jaccard").loc[order, order]
    fig, ax = plt.subplots(figsize=(2 + 0.6 * len(order), 1.5 + 0.5 * len(order)))
    _heatmap(ax, matrix, "Top-k neighbourhood overlap (mean Jaccard)", "Jaccard")
    savefig(fig, out)
    return fig


def plot_hubs(hub_scores: pd.Series, explained: pd.Series, truth_var=None, out: str | os.PathLike | None = None):
    """siVAE hub score (y) against PCA's per-gene variance explained (x); planted hubs highlighted."""
    explained = explained.loc[hub_scores.index]
    kinds = np.full(len(hub_scores), "gene", dtype=object)
    if truth_var is not None:
        truth = truth_var.loc[hub_scores.index]
        kinds = np.where(truth["hub_gene"].astype(bool), "planted hub", np.where(truth["module"] >= 0, "module member", "other"))
    fig, ax = plt.subplots(figsize=FIGSIZE_SINGLE)
    styles = [("other", NEUTRAL_COLOUR, 6), ("gene", PALETTE[0], 6), ("module member", HIGHLIGHT_COLOUR, 10), ("planted hub", UP_COLOUR, 24)]
    for kind, colour, size in styles:
        mask = kinds == kind
        if mask.any():
            ax.scatter(explained[mask], hub_scores[mask], s=size, color=colour, label=kind)
    ax.set(
        xlabel="variance explained by PCA (as many components as siVAE's dimensions)",
        ylabel="siVAE hub score (1 - reconstruction MSE)",
        title="Hub score vs per-gene variance explained",
    )
    ax.legend(frameon=False, fontsize=8)
    savefig(fig, out)
    return fig


def plot_knn(knn: pd.DataFrame, out: str | os.PathLike | None = None):
    """Bars: each method's seed mean (or its single run); dots: the single seeds."""
    knn = knn.assign(seed=knn["seed"].astype(str))
    runs = knn[knn["seed"] != "mean"]
    shown = runs.groupby("method", sort=False)["knn_accuracy"].mean()
    fig, ax = plt.subplots(figsize=FIGSIZE_SINGLE)
    ax.bar(shown.index, shown.to_numpy(), color=PALETTE[0])
    for i, method in enumerate(shown.index):
        values = runs.loc[runs["method"] == method, "knn_accuracy"]
        ax.scatter([i] * len(values), values, color="black", s=10, zorder=3)
    ax.set(ylim=(max(0.0, shown.min() - 0.1), 1.0), ylabel="5-fold kNN accuracy (cell type)", title="Cell embeddings: kNN accuracy")
    savefig(fig, out)
    return fig
