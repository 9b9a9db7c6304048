"""GeneRAIN figures: training curves, the Binning-By-Gene illustration, attribute-prediction AUCs and
a UMAP of the gene embeddings. Every function reads the files the workflow wrote and returns the
numbers it shows (``figure.numbers``, :func:`deepexpr.plots.style.styled`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from deepexpr.errors import InputError
from deepexpr.plots.style import (
    FIGSIZE_GRID,
    FIGSIZE_WIDE,
    NEUTRAL_COLOUR,
    PALETTE,
    new_figure,
    read_checked,
    savefig,
    set_title,
    styled,
)

CAPTIONS = {
    "generain_loss": "Training and validation loss of each GeneRAIN variant per optimiser step (cross-entropy; "
    "the variants predict different things, so compare curves within a panel, not across).",
    "generain_binning": "Binning-By-Gene for a few genes: log10 scaled expression against the bin it gets "
    "(left); the same samples binned block by block during training and again as 'new samples' through "
    "the stored boundaries (right, the fraction of identical bins per gene).",
    "generain_auc": "Out-of-fold ROC-AUC of the gene-attribute prediction per attribute (one dot each) for every "
    "GeneRAIN embedding and baseline; same genes, attributes and folds for all.",
    "generain_umap": "UMAP of each GeneRAIN embedding's gene vectors, genes coloured by the attributes with the "
    "most positives (grey: none of them).",
}


@styled
def plot_generain_loss(histories: Mapping[str, str], out=None, *, dataset: str = "", mode: str = "") -> dict:
    """One panel per variant (``{variant: history.tsv}``): train and validation loss per step."""
    fig, axes = new_figure(1, len(histories), figsize=FIGSIZE_WIDE, squeeze=False)
    final = {}
    for ax, (variant, path) in zip(axes[0], histories.items()):
        history = read_checked(path, ["step", "train_loss", "val_loss"])
        ax.plot(history["step"], history["train_loss"], color=PALETTE[0], label="train")
        ax.plot(history["step"], history["val_loss"], color=PALETTE[1], label="validation")
        ax.set_title(variant)
        ax.set_xlabel("optimiser step")
        ax.grid(alpha=0.3, lw=0.5)
        final[variant] = float(history["val_loss"].iloc[-1])
    axes[0, 0].set_ylabel("cross-entropy")
    axes[0, 0].legend()
    set_title(fig, "GeneRAIN training history", dataset, mode=mode)
    savefig(fig, out)
    return {"final_val_loss": final}


@styled
def plot_binning(
    values: pd.DataFrame, bins: pd.DataFrame, agreement: pd.Series, out=None, *, dataset: str = "", mode: str = ""
) -> dict:
    """Left: value -> bin per gene (``values`` and ``bins`` samples x genes, a few genes); right:
    the per-gene fraction of samples whose training and new-sample bins agree (``agreement``)."""
    fig, (left, right) = new_figure(1, 2, figsize=FIGSIZE_WIDE)
    for k, gene in enumerate(values.columns):
        order = np.argsort(values[gene].to_numpy())
        left.plot(values[gene].to_numpy()[order], bins[gene].to_numpy()[order], ".-", ms=3, lw=0.8,
                  color=PALETTE[k % len(PALETTE)], label=str(gene))  # fmt: skip
    left.set_xlabel("log10(scaled count + 1)")
    left.set_ylabel("bin (1 = zero)")
    left.legend(fontsize=7)
    left.grid(alpha=0.3, lw=0.5)
    right.hist(agreement.to_numpy(), bins=np.linspace(0, 1, 21), color=PALETTE[0])
    right.set_xlabel("fraction of samples with identical bins (training vs new-sample path)")
    right.set_ylabel("genes")
    set_title(fig, "Binning-By-Gene", dataset, mode=mode)
    savefig(fig, out)
    return {"genes_shown": len(values.columns), "mean_agreement": float(agreement.mean())}


@styled
def plot_auc_distributions(scores_tsv, out=None, *, dataset: str = "", mode: str = "") -> dict:
    """ROC-AUC per attribute (dots) and its median (bar) for every method of the benchmark table."""
    scores = read_checked(scores_tsv, ["method", "attribute", "metric", "value"])
    auc = scores[scores["metric"] == "roc_auc"]
    methods = list(dict.fromkeys(auc["method"]))
    fig, ax = new_figure(figsize=FIGSIZE_WIDE)
    rng = np.random.default_rng(0)  # horizontal jitter only
    means = {}
    for k, method in enumerate(methods):
        values = auc.loc[auc["method"] == method, "value"].to_numpy()
        means[method] = float(values.mean())
        ax.scatter(k + rng.uniform(-0.2, 0.2, len(values)), values, s=10, alpha=0.6,
                   color=PALETTE[k % len(PALETTE)])  # fmt: skip
        ax.hlines(np.median(values), k - 0.3, k + 0.3, color="black", lw=2)
    ax.axhline(0.5, color=NEUTRAL_COLOUR, ls="--", lw=1)
    ax.set_xticks(range(len(methods)), methods, rotation=20)
    ax.set_ylabel("ROC-AUC (out of fold)")
    ax.set_ylim(0, 1.02)
    set_title(fig, f"Gene-attribute prediction ({auc['attribute'].nunique()} attributes)", dataset, mode=mode)
    savefig(fig, out)
    return {"mean_roc_auc": means}


@styled
def plot_embedding_umaps(
    embeddings: Mapping[str, pd.DataFrame],
    gene_sets: Mapping[str, Sequence[str]],
    out=None,
    *,
    n_attributes: int = 6,
    max_genes: int = 3000,
    seed: int = 0,
    dataset: str = "",
    mode: str = "",
) -> dict:
    """One UMAP panel per embedding; genes coloured by the ``n_attributes`` largest gene sets.

    At most ``max_genes`` genes are drawn: every gene of the shown sets (up to the cap), then a
    seeded random sample of the others, so tens of thousands of genes stay cheap to plot.
    """
    import umap  # umap-learn (a scanpy dependency): imported here, it takes seconds to load

    if not embeddings:
        raise InputError("embeddings", "no embedding given")
    genes = next(iter(embeddings.values())).index
    sizes = {name: len(genes.intersection(members)) for name, members in gene_sets.items()}
    shown = [name for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:n_attributes] if size > 0]
    if len(genes) > max_genes:
        rng = np.random.default_rng(seed)
        members = genes[genes.isin(set().union(*(gene_sets[name] for name in shown)))]
        members = members[np.sort(rng.permutation(len(members))[:max_genes])]
        others = genes.difference(members)
        fill = others[np.sort(rng.permutation(len(others))[: max_genes - len(members)])]
        genes = genes[genes.isin(members.union(fill))]
    colour = pd.Series("none", index=genes)
    for name in reversed(shown):  # the largest set wins where sets overlap
        colour[genes.isin(gene_sets[name])] = name
    ncols = min(3, len(embeddings))
    nrows = int(np.ceil(len(embeddings) / ncols))
    fig, axes = new_figure(nrows, ncols, figsize=FIGSIZE_GRID, squeeze=False)
    for ax, (method, embedding) in zip(axes.ravel(), embeddings.items()):
        points = umap.UMAP(n_neighbors=min(15, len(embedding) - 1), random_state=seed).fit_transform(
            embedding.loc[genes].to_numpy()
        )
        ax.scatter(*points[(colour == "none").to_numpy()].T, s=4, color=NEUTRAL_COLOUR, alpha=0.5)
        for k, name in enumerate(shown):
            mask = (colour == name).to_numpy()
            ax.scatter(*points[mask].T, s=6, color=PALETTE[k % len(PALETTE)], label=name)
        ax.set_title(method)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(embeddings) :]:
        ax.set_axis_off()
    axes[0, 0].legend(fontsize=6, markerscale=2)
    set_title(fig, "GeneRAIN gene embeddings (UMAP)", dataset, mode=mode)
    savefig(fig, out)
    return {"genes": len(genes), "attributes_shown": shown}

