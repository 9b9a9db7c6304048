"""Rule figure_sivae_embeddings: siVAE's cell embedding (by cell type) and gene embedding (by
planted module on simulated data, by marker set on real data)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from deepexpr.workflow import rule_log


def two_dimensions(values):
    """The first two axes: the embedding itself when 2-D, else its first two principal components."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[1] <= 2:
        return values, ("dim 1", "dim 2")
    return PCA(n_components=2, random_state=0).fit_transform(values), ("PC1 of the embedding", "PC2")


def scatter(ax, xy, groups, title, labels, background="other"):
    groups = pd.Series(groups, dtype=str).to_numpy()
    rest = groups == background
    ax.scatter(*xy[rest].T, s=4, c="#D0D0D0", label=background, rasterized=True)
    for i, group in enumerate(sorted(set(groups[~rest]))):
        mask = groups == group
        ax.scatter(*xy[mask].T, s=10, color=plt.cm.tab10(i % 10), label=group, rasterized=True)
    ax.set(title=title, xlabel=labels[0], ylabel=labels[1])
    ax.legend(markerscale=2, fontsize=7, frameon=False, loc="best")


with rule_log(snakemake.log[0]):
    run = ad.read_h5ad(snakemake.input.run)
    fig, ax = plt.subplots(figsize=(6, 5))
    xy, labels = two_dimensions(run.obsm["X_sivae"])
    scatter(ax, xy, run.obs["cell_type"], "siVAE cell embedding (z)", labels, background="")
    fig.tight_layout()
    fig.savefig(snakemake.output.cells, dpi=150)

    genes = run.var_names.astype(str)
    if snakemake.input.truth:
        truth = ad.read_h5ad(snakemake.input.truth[0]).var.loc[genes]
        groups = np.where(truth["module"] >= 0, "module " + truth["module"].astype(str), "other")
        groups = np.where(truth["hub_gene"].astype(bool), groups + " (hub)", groups)
        title = "siVAE gene embedding (v), planted modules"
    else:
        groups = np.where(np.isin(genes, snakemake.params.markers), genes, "other")
        title = "siVAE gene embedding (v), marker genes"
    fig, ax = plt.subplots(figsize=(6, 5))
    xy, labels = two_dimensions(run.varm["sivae_loadings"])
    scatter(ax, xy, groups, title, labels)
    fig.tight_layout()
    fig.savefig(snakemake.output.genes, dpi=150)
