"""NB-VAE and DESeq2 figures: LFC agreement, volcanoes, NA genes, seed spread, credible intervals
and (on simulated data) ROC/PR against the truth (latent space and training curves:
:mod:`deepexpr.plots.training`).

Every function reads the result tables the workflow wrote (schemas in the project contracts),
computes every number it shows from them, draws one figure (into ``ax``/``fig`` when given), writes
it to ``out`` when given (PNG, or SVG/PDF by suffix) and returns it, with those numbers in
``figure.numbers`` so callers and tests can check them (:func:`deepexpr.plots.style.styled`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from deepexpr.errors import InputError
from deepexpr.plots.style import (
    DOWN_COLOUR,
    FIGSIZE_SINGLE,
    FIGSIZE_WIDE,
    HIGHLIGHT_COLOUR,
    NEUTRAL_COLOUR,
    PALETTE,
    UP_COLOUR,
    annotate_points,
    boolean,
    fmt_count,
    gene_labels,
    new_figure,
    numeric,
    plt,
    read_checked,
    savefig,
    set_title,
    styled,
)

CAPTIONS = {
    "lfc_scatter": "Generative log2 fold change against the DESeq2 log2 fold change per gene, with the identity "
    "line; Pearson r and Spearman rho are computed over the genes with a DESeq2 adjusted p-value, and the Cook's "
    "outliers (adjusted p-value NA) are marked and left out of both.",
    "deseq2_volcano": "DESeq2 volcano plot: log2 fold change against -log10 adjusted p-value; genes with |log2FC| > 1 and "
    "padj < 0.05 are coloured and counted, genes with NA padj are not shown.",
    "generative_volcano": "Generative volcano plot: pooled posterior-mean log2 fold change against the posterior "
    "probability that |LFC| exceeds delta, genes called at the FDR target coloured; in faithful mode, which "
    "defines no such probability, the LFC distribution with the original's top/bottom calls.",
    "na_genes": "Genes DESeq2 left without an adjusted p-value: their generative LFC against the distribution over "
    "tested genes, and each gene's generative and DESeq2 estimates; the title says how many are Cook's outliers.",
    "seed_spread": "Seed spread of the generative LFC: each seed's estimate against the estimate pooled over seeds, "
    "and the Pearson correlation between every pair of seeds.",
    "credible_intervals": "Genes with the largest absolute pooled generative LFC, with their 90% credible intervals "
    "(where the mode defines them) and each seed's estimate.",
    "roc": "Simulated data: ROC curves for recovering the truly DE genes, scored by DESeq2 (-log10 p-value), the "
    "generative model (P(|LFC| > delta), or |LFC| where that is undefined) and the naive |log2 ratio| baseline.",
    "pr": "Simulated data: precision-recall curves for recovering the truly DE genes with the same scores as the ROC "
    "figure; AUPRC is the average precision and the dotted line is the fraction of truly DE genes.",
}

LFC_AXIS_LABELS = {
    "deseq2_log2fc": "DESeq2 log2 fold change (unshrunk)",
    "deseq2_log2fc_shrunk": "DESeq2 log2 fold change (shrunk)",
    "naive_log2fc": "naive log2 ratio of normalised means",
    "generative_lfc": "generative LFC (log2, NB-VAE)",
    "true_log2fc": "true log2 fold change (simulation)",
}

_SEED_COLUMN = re.compile(r"^lfc_mean_seed(\d+)$")


# --------------------------------------------------------------------------------------------------------------------
# LFC agreement


def _correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, np.nan
    return float(stats.pearsonr(x, y)[0]), float(stats.spearmanr(x, y)[0])


@styled
def plot_lfc_scatter(
    comparison_tsv,
    out=None,
    x: str = "deseq2_log2fc",
    y: str = "generative_lfc",
    error_bars: int = 0,
    seed: int = 0,
    *,
    dataset: str = "",
    label: str = "",
    mode: str = "",
) -> dict:
    """Per-gene LFC scatter with identity line, Pearson r / Spearman rho over genes with DESeq2 padj.

    ``error_bars`` > 0 draws +-1 ``generative_sd`` for that many randomly chosen genes (seeded)
    when ``y`` is the generative LFC and the sd is defined. Returns ``pearson_r``,
    ``spearman_rho``, ``n_genes`` (used for r), ``n_cooks_outliers``.
    """
    df = read_checked(comparison_tsv, ["gene_id", "deseq2_padj", "cooks_outlier", x, y])
    xs, ys = numeric(df, x, comparison_tsv), numeric(df, y, comparison_tsv)
    padj = numeric(df, "deseq2_padj", comparison_tsv)
    cooks = boolean(df, "cooks_outlier", comparison_tsv, na_as=False)
    finite = xs.notna() & ys.notna()
    in_r = finite & padj.notna()
    pearson_r, spearman_rho = _correlations(xs[in_r].to_numpy(), ys[in_r].to_numpy())

    fig, ax = new_figure(figsize=(6.2, 5.6))
    ax.scatter(
        xs[in_r],
        ys[in_r],
        s=4,
        c="#4D4D4D",
        alpha=0.35,
        lw=0,
        rasterized=True,
        label=f"tested genes (n = {fmt_count(in_r.sum())})",
    )
    other_na = finite & padj.isna() & ~cooks
    if other_na.any():
        ax.scatter(
            xs[other_na],
            ys[other_na],
            s=8,
            c=PALETTE[1],
            alpha=0.7,
            lw=0,
            rasterized=True,
            label=f"NA padj, not Cook's outliers (n = {fmt_count(other_na.sum())}; not in r)",
        )
    shown_cooks = finite & cooks
    if shown_cooks.any():
        ax.scatter(
            xs[shown_cooks],
            ys[shown_cooks],
            s=40,
            marker="^",
            c=HIGHLIGHT_COLOUR,
            edgecolors="black",
            lw=0.5,
            zorder=4,
            label=f"Cook's outliers, padj NA (n = {fmt_count(shown_cooks.sum())}; not in r)",
        )

    if error_bars > 0 and y == "generative_lfc" and "generative_sd" in df.columns:
        sd = numeric(df, "generative_sd", comparison_tsv)
        candidates = df.index[in_r & sd.notna()]
        if len(candidates):
            rng = np.random.default_rng(seed)
            chosen = rng.choice(candidates, size=min(error_bars, len(candidates)), replace=False)
            ax.errorbar(
                xs[chosen],
                ys[chosen],
                yerr=sd[chosen],
                fmt="none",
                ecolor=PALETTE[0],
                alpha=0.6,
                lw=0.8,
                label=f"±1 posterior sd ({len(chosen)} random genes)",
            )

    if finite.any():
        lo = float(min(xs[finite].min(), ys[finite].min()))
        hi = float(max(xs[finite].max(), ys[finite].max()))
        ax.plot([lo, hi], [lo, hi], ls="--", color="black", lw=0.8, label="identity (y = x)")
    ax.axhline(0, color="#BBBBBB", lw=0.6, zorder=0)
    ax.axvline(0, color="#BBBBBB", lw=0.6, zorder=0)
    ax.set_xlabel(LFC_AXIS_LABELS.get(x, x))
    ax.set_ylabel(LFC_AXIS_LABELS.get(y, y))
    r_text = (
        "n < 3 or constant: r undefined"
        if np.isnan(pearson_r)
        else (
            f"Pearson r = {pearson_r:.3f}\nSpearman ρ = {spearman_rho:.3f}\n"
            f"over {fmt_count(in_r.sum())} genes with DESeq2 padj"
        )
    )
    ax.text(
        0.02,
        0.98,
        r_text,
        transform=ax.transAxes,
        va="top",
        ha="left",
        fontsize=9,
        bbox={"boxstyle": "round", "fc": "white", "ec": "#CCCCCC"},
    )
    ax.legend(loc="lower right", markerscale=1.5)
    if 0 < shown_cooks.sum() <= 20:
        names = gene_labels(df)
        annotate_points(ax, xs[shown_cooks], ys[shown_cooks], names[shown_cooks])
    set_title(fig, f"{LFC_AXIS_LABELS.get(y, y)} vs {LFC_AXIS_LABELS.get(x, x)}", dataset, label, mode)
    savefig(fig, out)
    return {
        "pearson_r": pearson_r,
        "spearman_rho": spearman_rho,
        "n_genes": int(in_r.sum()),
        "n_cooks_outliers": int(cooks.sum()),
    }


# --------------------------------------------------------------------------------------------------------------------
# Volcano plots


def _label_top(ax, names: pd.Series, xs: pd.Series, ys: pd.Series, groups, n: int) -> None:
    """Label the first ``n`` genes of each ordered index group (e.g. up, then down)."""
    chosen = [idx for group in groups for idx in list(group)[:n]]
    annotate_points(ax, xs[chosen], ys[chosen], names[chosen])


@styled
def plot_volcano(
    deseq2_tsv,
    out=None,
    lfc_threshold: float = 1.0,
    padj_threshold: float = 0.05,
    n_labels: int = 5,
    *,
    dataset: str = "",
    label: str = "",
    mode: str = "",
) -> dict:
    """DESeq2 volcano: log2fc vs -log10 padj, |LFC| > threshold & padj < cut-off coloured and counted.

    Genes with padj = 0 are drawn at the largest finite height as triangles. Returns ``n_up``,
    ``n_down``, ``n_tested`` (non-NA padj) and ``n_na``.
    """
    df = read_checked(deseq2_tsv, ["gene_id", "log2fc", "padj"])
    lfc = numeric(df, "log2fc", deseq2_tsv)
    padj = numeric(df, "padj", deseq2_tsv)
    tested = padj.notna() & lfc.notna()
    significant = tested & (padj < padj_threshold)
    up = significant & (lfc > lfc_threshold)
    down = significant & (lfc < -lfc_threshold)
    other = tested & ~up & ~down

    with np.errstate(divide="ignore"):
        height = -np.log10(padj)
    zero = tested & (padj == 0)
    finite_max = height[tested & ~zero].max() if (tested & ~zero).any() else 1.0
    height = height.where(~zero, finite_max)

    fig, ax = new_figure(figsize=FIGSIZE_SINGLE)
    groups = [
        (other, 4, NEUTRAL_COLOUR, 0.5, f"not significant or |log2FC| <= {lfc_threshold:g}"),
        (up, 5, UP_COLOUR, 0.6, f"up: log2FC > {lfc_threshold:g}, padj < {padj_threshold:g}"),
        (down, 5, DOWN_COLOUR, 0.6, f"down: log2FC < -{lfc_threshold:g}, padj < {padj_threshold:g}"),
    ]
    for mask, size, colour, alpha, text in groups:
        ax.scatter(
            lfc[mask],
            height[mask],
            s=size,
            c=colour,
            alpha=alpha,
            lw=0,
            rasterized=True,
            label=f"{text} ({fmt_count(mask.sum())})",
        )
    if zero.any():
        ax.scatter(
            lfc[zero],
            height[zero],
            s=18,
            marker="^",
            facecolors="none",
            edgecolors="black",
            lw=0.6,
            label=f"padj = 0, drawn at top ({fmt_count(zero.sum())})",
        )
    ax.axhline(-np.log10(padj_threshold), ls="--", color="#666666", lw=0.7)
    for sign in (-1, 1):
        ax.axvline(sign * lfc_threshold, ls="--", color="#666666", lw=0.7)
    ax.set_xlabel("DESeq2 log2 fold change (unshrunk)")
    ax.set_ylabel("-log10 adjusted p-value")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), markerscale=2.5)
    # Label the corner genes: large effect and strong evidence together (|log2FC| x -log10 padj).
    order = (lfc.abs() * height).sort_values(ascending=False, kind="stable").index
    _label_top(ax, gene_labels(df), lfc, height, ([i for i in order if up[i]], [i for i in order if down[i]]), n_labels)
    n_na = int(padj.isna().sum())
    set_title(
        fig,
        f"DESeq2 volcano ({fmt_count(tested.sum())} genes with padj; {fmt_count(n_na)} NA padj not shown)",
        dataset,
        label,
        mode,
    )
    savefig(fig, out)
    return {"n_up": int(up.sum()), "n_down": int(down.sum()), "n_tested": int(tested.sum()), "n_na": n_na}


@styled
def plot_generative_volcano(
    generative_tsv, out=None, n_labels: int = 5, *, dataset: str = "", label: str = "", mode: str = ""
) -> dict:
    """Posterior-mean LFC vs P(|LFC| > delta), called genes coloured.

    When ``prob_de`` is undefined (faithful mode) the LFC distribution is drawn instead, with the
    called genes (the original's top/bottom rule) coloured. Returns ``n_called_up``,
    ``n_called_down``, ``n_genes`` and ``has_prob_de``.
    """
    df = read_checked(generative_tsv, ["gene_id", "lfc_mean", "prob_de", "called"])
    lfc = numeric(df, "lfc_mean", generative_tsv)
    prob = numeric(df, "prob_de", generative_tsv)
    called = boolean(df, "called", generative_tsv, na_as=False)
    up, down = called & (lfc > 0), called & (lfc < 0)
    rest = lfc.notna() & ~up & ~down
    has_prob = bool(prob.notna().any())
    legend = {
        "rest": f"not called ({fmt_count(rest.sum())})",
        "up": f"called, LFC > 0 ({fmt_count(up.sum())})",
        "down": f"called, LFC < 0 ({fmt_count(down.sum())})",
    }

    fig, ax = new_figure(figsize=FIGSIZE_SINGLE)
    if has_prob:
        for mask, colour, key in ((rest, NEUTRAL_COLOUR, "rest"), (up, UP_COLOUR, "up"), (down, DOWN_COLOUR, "down")):
            ax.scatter(lfc[mask], prob[mask], s=5, c=colour, alpha=0.6, lw=0, rasterized=True, label=legend[key])
        ax.set_ylabel("posterior P(|LFC| > delta)")
        ax.set_ylim(-0.03, 1.08)
        what = f"Generative volcano ({fmt_count(lfc.notna().sum())} modelled genes)"
    else:
        finite = lfc.dropna()
        bins = np.histogram_bin_edges(finite, bins=60) if len(finite) else 10
        ax.hist(
            [lfc[rest], lfc[down], lfc[up]],
            bins=bins,
            stacked=True,
            color=[NEUTRAL_COLOUR, DOWN_COLOUR, UP_COLOUR],
            label=[legend["rest"], legend["down"], legend["up"]],
        )
        ax.set_ylabel("genes")
        what = (
            f"Generative LFC distribution ({fmt_count(lfc.notna().sum())} modelled genes)\n"
            "prob_de is not defined in this mode; 'called' is the mode's own rule"
        )
    ax.axvline(0, color="#BBBBBB", lw=0.6, zorder=0)
    ax.set_xlabel("generative LFC (log2, pooled over seeds)")
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), markerscale=2.5)
    if has_prob:
        # The most extreme called genes: at prob_de ~ 1 the effect size is what separates them.
        order = lfc.abs().sort_values(ascending=False, kind="stable").index
        _label_top(
            ax, gene_labels(df), lfc, prob, ([i for i in order if up[i]], [i for i in order if down[i]]), n_labels
        )
    set_title(fig, what, dataset, label, mode)
    savefig(fig, out)
    return {
        "n_called_up": int(up.sum()),
        "n_called_down": int(down.sum()),
        "n_genes": int(lfc.notna().sum()),
        "has_prob_de": has_prob,
    }


# --------------------------------------------------------------------------------------------------------------------
# Genes without a DESeq2 adjusted p-value


@styled
def plot_na_genes(
    comparison_tsv, out=None, max_genes: int = 25, *, dataset: str = "", label: str = "", mode: str = ""
) -> dict:
    """Generative LFC of NA-padj genes vs tested genes, and each NA gene's generative and DESeq2 LFC.

    The title calls the NA genes Cook's outliers only as far as the ``cooks_outlier`` column says
    so. Returns ``n_tested``, ``n_na``, ``n_na_cooks`` and ``na_genes`` (labels shown).
    """
    df = read_checked(comparison_tsv, ["gene_id", "deseq2_padj", "deseq2_log2fc", "generative_lfc", "cooks_outlier"])
    padj = numeric(df, "deseq2_padj", comparison_tsv)
    gen = numeric(df, "generative_lfc", comparison_tsv)
    deseq = numeric(df, "deseq2_log2fc", comparison_tsv)
    cooks = boolean(df, "cooks_outlier", comparison_tsv, na_as=False)
    tested, na = padj.notna(), padj.isna()
    n_na, n_na_cooks = int(na.sum()), int((na & cooks).sum())

    fig, (ax_hist, ax_genes) = new_figure(1, 2, figsize=FIGSIZE_WIDE, gridspec_kw={"width_ratios": [1.2, 1]})
    values = gen[tested & gen.notna()]
    bins = np.histogram_bin_edges(gen.dropna(), bins=50) if gen.notna().any() else 10
    ax_hist.hist(
        values,
        bins=bins,
        density=True,
        color=NEUTRAL_COLOUR,
        alpha=0.8,
        label=f"tested genes (n = {fmt_count(len(values))})",
    )
    na_values = gen[na & gen.notna()]
    if len(na_values) >= 20:  # a density of a handful of genes would be noise; show them as a rug below
        ax_hist.hist(
            na_values,
            bins=bins,
            density=True,
            histtype="step",
            color=HIGHLIGHT_COLOUR,
            lw=1.5,
            label=f"NA padj genes (n = {fmt_count(len(na_values))})",
        )
    elif len(na_values):
        ax_hist.plot(
            na_values,
            np.zeros(len(na_values)),
            "|",
            color=HIGHLIGHT_COLOUR,
            markersize=18,
            mew=2,
            label=f"NA padj genes (n = {len(na_values)})",
        )
    ax_hist.set_xlabel("generative LFC (log2)")
    ax_hist.set_ylabel("density")
    ax_hist.legend(loc="upper right")
    ax_hist.set_title("Generative LFC: tested vs NA padj")

    names = gene_labels(df)
    na_idx = df.index[na]
    order = deseq[na_idx].abs().fillna(-1).sort_values(ascending=False, kind="stable").index[:max_genes]
    shown = list(reversed(list(order)))
    if shown:
        ypos = np.arange(len(shown))
        for yy, idx in zip(ypos, shown):
            ax_genes.plot([gen[idx], deseq[idx]], [yy, yy], color="#BBBBBB", lw=1, zorder=1)
        ax_genes.scatter(gen[shown], ypos, c=PALETTE[0], s=35, zorder=3, label="generative LFC")
        ax_genes.scatter(deseq[shown], ypos, c=UP_COLOUR, marker="s", s=35, zorder=3, label="DESeq2 log2FC")
        ax_genes.set_yticks(ypos, [names[i] + ("" if cooks[i] else " (not Cook's)") for i in shown])
        ax_genes.axvline(0, color="#BBBBBB", lw=0.6, zorder=0)
        ax_genes.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), ncols=2)
        ax_genes.set_xlabel("log2 fold change")
        more = f", {len(shown)} of {n_na} with largest |DESeq2 LFC|" if n_na > len(shown) else ""
        ax_genes.set_title(f"Genes with NA padj{more}")
    else:
        ax_genes.axis("off")
        ax_genes.text(0.5, 0.5, "every gene has a DESeq2 adjusted p-value", ha="center", va="center", color="#444444")

    if n_na and n_na_cooks == n_na:
        reason = "all are Cook's-distance outliers"
    elif n_na:
        reason = f"{n_na_cooks} of {n_na} are Cook's-distance outliers"
    else:
        reason = "none"
    set_title(fig, f"Genes DESeq2 left without padj: {fmt_count(n_na)} ({reason})", dataset, label, mode)
    savefig(fig, out)
    return {
        "n_tested": int(tested.sum()),
        "n_na": n_na,
        "n_na_cooks": n_na_cooks,
        "na_genes": [names[i] for i in order],
    }


# --------------------------------------------------------------------------------------------------------------------
# Seed spread and credible intervals


def _seed_columns(df: pd.DataFrame, path) -> list[str]:
    cols = sorted((c for c in df.columns if _SEED_COLUMN.match(str(c))), key=lambda c: int(_SEED_COLUMN.match(c)[1]))
    if not cols:
        raise InputError(path, "missing required column(s) lfc_mean_seed<k> (one per seed)")
    return cols


@styled
def plot_seed_spread(generative_tsv, out=None, *, dataset: str = "", label: str = "", mode: str = "") -> dict:
    """Per-seed LFC vs the pooled ``lfc_mean``, plus pairwise Pearson r between seeds.

    Returns ``seeds``, ``pearson_vs_pooled`` (per seed) and ``pairwise_pearson`` (matrix as lists).
    """
    df = read_checked(generative_tsv, ["gene_id", "lfc_mean"])
    seed_cols = _seed_columns(df, generative_tsv)
    pooled = numeric(df, "lfc_mean", generative_tsv)
    per_seed = pd.DataFrame({c: numeric(df, c, generative_tsv) for c in seed_cols})
    seeds = [f"seed {_SEED_COLUMN.match(c)[1]}" for c in seed_cols]

    fig, (ax, ax_heat) = new_figure(1, 2, figsize=FIGSIZE_WIDE, gridspec_kw={"width_ratios": [1.25, 1]})
    vs_pooled = {}
    for k, (col, name) in enumerate(zip(seed_cols, seeds)):
        ok = pooled.notna() & per_seed[col].notna()
        r, _ = _correlations(pooled[ok].to_numpy(), per_seed.loc[ok, col].to_numpy())
        vs_pooled[name] = r
        ax.scatter(
            pooled[ok],
            per_seed.loc[ok, col],
            s=3,
            alpha=0.3,
            lw=0,
            c=PALETTE[k % len(PALETTE)],
            rasterized=True,
            label=f"{name} (r = {r:.3f})",
        )
    finite = pooled.dropna()
    if len(finite):
        ax.plot([finite.min(), finite.max()], [finite.min(), finite.max()], ls="--", color="black", lw=0.8)
    ax.set_xlabel("pooled generative LFC (lfc_mean, log2)")
    ax.set_ylabel("single-seed generative LFC (log2)")
    ax.legend(loc="upper left", markerscale=4, title="r vs pooled")
    ax.set_title("Each seed vs the pooled estimate")

    pairwise = per_seed.corr(method="pearson").to_numpy()
    if len(seed_cols) > 1:
        image = ax_heat.imshow(pairwise, cmap="viridis", vmin=min(np.nanmin(pairwise), 0.9), vmax=1)
        ax_heat.set_xticks(range(len(seeds)), seeds, rotation=45, ha="right")
        ax_heat.set_yticks(range(len(seeds)), seeds)
        for i in range(len(seeds)):
            for j in range(len(seeds)):
                ax_heat.text(
                    j,
                    i,
                    f"{pairwise[i, j]:.3f}",
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    color="white" if pairwise[i, j] < (np.nanmin(pairwise) + 1) / 2 else "black",
                )
        fig.colorbar(image, ax=ax_heat, shrink=0.8, label="Pearson r of LFC")
        ax_heat.set_title("Between seeds")
        ax_heat.spines[:].set_visible(False)
    else:
        ax_heat.axis("off")
        ax_heat.text(0.5, 0.5, "one seed only: no between-seed spread", ha="center", va="center", color="#444444")
    set_title(
        fig,
        f"Generative LFC across {len(seed_cols)} seed(s) ({fmt_count(pooled.notna().sum())} genes)",
        dataset,
        label,
        mode,
    )
    savefig(fig, out)
    return {"seeds": seeds, "pearson_vs_pooled": vs_pooled, "pairwise_pearson": pairwise.tolist()}


@styled
def plot_credible_intervals(
    generative_tsv, out=None, n: int = 30, *, dataset: str = "", label: str = "", mode: str = ""
) -> dict:
    """The ``n`` genes with largest |lfc_mean|: posterior mean, 90% interval (q05-q95), per-seed LFC.

    Returns ``genes`` (labels, top to bottom) and ``n_with_interval``.
    """
    df = read_checked(generative_tsv, ["gene_id", "lfc_mean", "lfc_q05", "lfc_q95", "called"])
    lfc = numeric(df, "lfc_mean", generative_tsv)
    q05, q95 = numeric(df, "lfc_q05", generative_tsv), numeric(df, "lfc_q95", generative_tsv)
    called = boolean(df, "called", generative_tsv, na_as=False)
    seed_lfc = [numeric(df, c, generative_tsv) for c in df.columns if _SEED_COLUMN.match(str(c))]
    top = lfc.abs().dropna().sort_values(ascending=False, kind="stable").index[:n]
    rows = lfc[top].sort_values(kind="stable").index  # most negative at the bottom
    names = gene_labels(df)

    fig, ax = new_figure(figsize=(6.4, max(3.0, 0.22 * len(rows) + 1.6)))
    ypos = np.arange(len(rows))
    has_interval = q05[rows].notna() & q95[rows].notna()
    for yy, idx, ok in zip(ypos, rows, has_interval):
        colour = (UP_COLOUR if lfc[idx] > 0 else DOWN_COLOUR) if called[idx] else NEUTRAL_COLOUR
        if ok:
            ax.plot([q05[idx], q95[idx]], [yy, yy], color=colour, lw=2, alpha=0.7, solid_capstyle="butt")
        ax.scatter([lfc[idx]], [yy], color=colour, s=28, zorder=3, edgecolors="white", lw=0.5)
        ax.scatter(
            [values[idx] for values in seed_lfc],
            [yy] * len(seed_lfc),
            marker="|",
            color="black",
            s=30,
            lw=0.8,
            zorder=4,
        )
    ax.set_yticks(ypos, [names[i] for i in rows])
    ax.axvline(0, color="#BBBBBB", lw=0.6, zorder=0)
    ax.set_xlabel("generative LFC (log2)")
    handles = [
        plt.Line2D([], [], color=UP_COLOUR, marker="o", lw=2, label="called, up"),
        plt.Line2D([], [], color=DOWN_COLOUR, marker="o", lw=2, label="called, down"),
        plt.Line2D([], [], color=NEUTRAL_COLOUR, marker="o", lw=2, label="not called"),
    ]
    if seed_lfc:
        handles.append(plt.Line2D([], [], color="black", marker="|", ls="", label=f"per-seed LFC ({len(seed_lfc)})"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    interval_note = (
        "dot = posterior mean, bar = 90% credible interval (q05-q95)"
        if has_interval.any()
        else "credible intervals not defined in this mode"
    )
    set_title(fig, f"Top {len(rows)} genes by |generative LFC|\n{interval_note}", dataset, label, mode)
    savefig(fig, out)
    return {"genes": [names[i] for i in reversed(rows)], "n_with_interval": int(has_interval.sum())}


# --------------------------------------------------------------------------------------------------------------------
# Recovery of simulated truth


def _truth_scores(comparison_tsv, deseq2_tsv) -> tuple[np.ndarray, dict, dict]:
    """Truth labels and per-method scores (higher = more confidently DE); NA scores rank last."""
    df = read_checked(comparison_tsv, ["gene_id", "is_de", "generative_lfc", "prob_de", "naive_log2fc"])
    truth = boolean(df, "is_de", comparison_tsv).to_numpy()
    if truth.all() or not truth.any():
        raise InputError(comparison_tsv, "column is_de: need both truly DE and non-DE genes to draw ROC/PR curves")
    if "deseq2_pvalue" in df.columns:
        pvalue = numeric(df, "deseq2_pvalue", comparison_tsv)
    elif deseq2_tsv is not None:
        deseq = read_checked(deseq2_tsv, ["gene_id", "pvalue"])
        deseq["pvalue"] = numeric(deseq, "pvalue", deseq2_tsv)
        lookup = deseq.drop_duplicates("gene_id").set_index("gene_id")["pvalue"]
        missing = ~df["gene_id"].isin(lookup.index)
        if missing.any():
            raise InputError(deseq2_tsv, f"gene_id {df.loc[missing, 'gene_id'].iloc[0]} of {comparison_tsv} missing")
        pvalue = df["gene_id"].map(lookup)
    else:
        raise InputError(comparison_tsv, "missing required column deseq2_pvalue; pass the deseq2.tsv path instead")

    prob = numeric(df, "prob_de", comparison_tsv)
    if prob.notna().any():
        generative, generative_name = prob.fillna(-1.0), "generative, P(|LFC| > delta)"
    else:  # faithful mode defines no posterior probability; rank by effect size as the original did
        generative, generative_name = (
            numeric(df, "generative_lfc", comparison_tsv).abs().fillna(-1.0),
            "generative, |LFC| (no prob_de in this mode)",
        )
    with np.errstate(divide="ignore"):
        deseq_score = (-np.log10(pvalue)).fillna(-1.0)
    scores = {
        "deseq2": deseq_score.to_numpy(),
        "generative": generative.to_numpy(),
        "naive": numeric(df, "naive_log2fc", comparison_tsv).abs().fillna(-1.0).to_numpy(),
    }
    names = {"deseq2": "DESeq2, -log10 p", "generative": generative_name, "naive": "naive |log2 ratio| (baseline)"}
    return truth, scores, names


_METHOD_COLOURS = {"deseq2": PALETTE[1], "generative": PALETTE[0], "naive": NEUTRAL_COLOUR}


@styled
def plot_roc(comparison_tsv, out=None, deseq2_tsv=None, *, dataset: str = "", label: str = "", mode: str = "") -> dict:
    """ROC curves of DESeq2, generative and naive scores against the simulated ``is_de``.

    DESeq2 p-values come from ``deseq2_pvalue`` in the comparison table or from ``deseq2_tsv``.
    Returns ``{method: {"auroc": ..., "auprc": ...}}`` plus ``n_genes`` and ``n_de``.
    """
    truth, scores, names = _truth_scores(comparison_tsv, deseq2_tsv)
    fig, ax = new_figure(figsize=(5.6, 5.2))
    result = {"n_genes": int(len(truth)), "n_de": int(truth.sum())}
    for method, score in scores.items():
        fpr, tpr, _ = roc_curve(truth, score)
        auroc = float(roc_auc_score(truth, score))
        result[method] = {"auroc": auroc, "auprc": float(average_precision_score(truth, score))}
        ax.plot(fpr, tpr, color=_METHOD_COLOURS[method], lw=1.6, label=f"{names[method]}: AUROC {auroc:.3f}")
    ax.plot([0, 1], [0, 1], ls=":", color="black", lw=0.8, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.legend(loc="lower right")
    set_title(
        fig,
        f"Recovery of true DE genes: ROC ({fmt_count(truth.sum())} of {fmt_count(len(truth))} DE)",
        dataset,
        label,
        mode,
    )
    savefig(fig, out)
    return result


@styled
def plot_pr(comparison_tsv, out=None, deseq2_tsv=None, *, dataset: str = "", label: str = "", mode: str = "") -> dict:
    """Precision-recall curves of the same scores as :func:`plot_roc`; AUPRC = average precision.

    Returns ``{method: {"auroc": ..., "auprc": ...}}`` plus ``n_genes`` and ``n_de``.
    """
    truth, scores, names = _truth_scores(comparison_tsv, deseq2_tsv)
    fig, ax = new_figure(figsize=(5.6, 5.2))
    result = {"n_genes": int(len(truth)), "n_de": int(truth.sum())}
    for method, score in scores.items():
        precision, recall, _ = precision_recall_curve(truth, score)
        auprc = float(average_precision_score(truth, score))
        result[method] = {"auroc": float(roc_auc_score(truth, score)), "auprc": auprc}
        ax.step(
            recall,
            precision,
            where="post",
            color=_METHOD_COLOURS[method],
            lw=1.6,
            label=f"{names[method]}: AUPRC {auprc:.3f}",
        )
    prevalence = truth.mean()
    ax.axhline(prevalence, ls=":", color="black", lw=0.8, label=f"fraction truly DE ({prevalence:.3f})")
    ax.set_xlabel("recall (true DE genes found)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_aspect("equal")
    ax.legend(loc="lower left")
    set_title(
        fig,
        f"Recovery of true DE genes: precision-recall ({fmt_count(truth.sum())} of " f"{fmt_count(len(truth))} DE)",
        dataset,
        label,
        mode,
    )
    savefig(fig, out)
    return result


__all__ = [
    "CAPTIONS",
    "plot_lfc_scatter",
    "plot_volcano",
    "plot_generative_volcano",
    "plot_na_genes",
    "plot_seed_spread",
    "plot_credible_intervals",
    "plot_roc",
    "plot_pr",
]
