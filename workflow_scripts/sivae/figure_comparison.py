"""Rule figure_sivae_comparison: loading agreement heatmap, hub score vs variance explained,
neighbourhood Jaccard heatmap and kNN accuracy bars of the siVAE study."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np

from deepexpr.genes import read_gene_table
from deepexpr.io import read_table
from deepexpr.workflow import rule_log


def heatmap(ax, matrix, title, colorbar_label):
    image = ax.imshow(matrix.to_numpy(), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(matrix.shape[0]), matrix.index)
    for (i, j), value in np.ndenumerate(matrix.to_numpy()):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.6 else "black")
    ax.set_title(title)
    plt.colorbar(image, ax=ax, label=colorbar_label)


with rule_log(snakemake.log[0]):
    agreement = read_table(snakemake.input.agreement)
    seconds = agreement.groupby("method", sort=False)["seconds"].first()
    matrix = agreement.pivot(index="method", columns="dimension", values="abs_spearman").loc[seconds.index]
    matrix.index = [f"{m} ({s:.1f} s)" for m, s in seconds.items()]
    fig, ax = plt.subplots(figsize=(1 + 0.6 * matrix.shape[1], 1.5 + 0.5 * len(matrix)))
    heatmap(ax, matrix, f"|Spearman| with siVAE loadings ({agreement['reference_seconds'].iloc[0]:.1f} s)", "|Spearman|")
    ax.set_xlabel("siVAE dimension (other method's matched one to one)")
    fig.tight_layout()
    fig.savefig(snakemake.output.agreement, dpi=150)

    jaccard = read_table(snakemake.input.jaccard).pivot(index="method_a", columns="method_b", values="jaccard")
    order = list(dict.fromkeys(read_table(snakemake.input.jaccard)["method_a"]))
    jaccard = jaccard.loc[order, order]
    fig, ax = plt.subplots(figsize=(2 + 0.6 * len(order), 1.5 + 0.5 * len(order)))
    heatmap(ax, jaccard, "Top-k neighbourhood overlap (mean Jaccard)", "Jaccard")
    fig.tight_layout()
    fig.savefig(snakemake.output.jaccard, dpi=150)

    _, hubs = read_gene_table(snakemake.input.sivae_genes)
    _, explained = read_gene_table(snakemake.input.pca_genes)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    if snakemake.input.truth:
        truth = ad.read_h5ad(snakemake.input.truth[0]).var.loc[hubs.index]
        kinds = np.where(truth["hub_gene"].astype(bool), "planted hub", np.where(truth["module"] >= 0, "module member", "other"))
    else:
        kinds = np.full(len(hubs), "gene")
    for kind, colour in [("other", "#C0C0C0"), ("gene", "#4C72B0"), ("module member", "#4C72B0"), ("planted hub", "#D55E00")]:
        mask = kinds == kind
        if mask.any():
            ax.scatter(explained[mask], hubs[mask], s=8 if kind != "planted hub" else 24, color=colour, label=kind)
    ax.set(
        xlabel="variance explained by PCA (same number of components)",
        ylabel="siVAE hub score (1 - reconstruction MSE)",
        title="Hub score vs per-gene variance explained",
    )
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(snakemake.output.hubs, dpi=150)

    knn = read_table(snakemake.input.knn, dtype={"seed": str})
    single = knn.groupby("method", sort=False)["seed"].transform("size") == 1
    shown = knn[(knn["seed"] == "mean") | single]
    per_seed = knn[~single & (knn["seed"] != "mean")]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.bar(shown["method"], shown["knn_accuracy"], color="#4C72B0")
    for i, method in enumerate(shown["method"]):
        values = per_seed.loc[per_seed["method"] == method, "knn_accuracy"]
        ax.scatter([i] * len(values), values, color="black", s=10, zorder=3)
    low = max(0.0, shown["knn_accuracy"].min() - 0.1)
    ax.set(ylim=(low, 1.0), ylabel="5-fold kNN accuracy (cell type)", title="Cell embeddings: kNN accuracy")
    fig.tight_layout()
    fig.savefig(snakemake.output.knn, dpi=150)
