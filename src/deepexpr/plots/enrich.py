"""Gene-set enrichment figures drawn from ``results/{dataset}/enrich/{contrast}/{method}_{collection}.tsv``.

ORA results become clusterProfiler-style dot plots (term vs gene ratio or -log10 padj, dot
size = overlap, colour = padj); prerank GSEA results become NES dots coloured by padj. When no
term passes the cut-off the figure says so instead of failing the rule.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm

from deepexpr.plots.style import (
    DOWN_COLOUR,
    PADJ_CMAP,
    UP_COLOUR,
    fmt_count,
    message_figure,
    new_figure,
    numeric,
    read_checked,
    savefig,
    set_title,
    styled,
)

CAPTIONS = {
    "enrichment": "Gene-set enrichment, most significant sets (BH-adjusted p < 0.05) only. Over-representation of the "
    "up- or down-regulated genes: share of each set found in the list, dot size the number of list genes in the "
    "set, colour the adjusted p-value. Preranked GSEA on the log2 fold-change ranking: normalised enrichment "
    "score, coloured by adjusted p-value.",
}

ANALYSES = {
    "ora_up": "ORA, up-regulated genes",
    "ora_down": "ORA, down-regulated genes",
    "prerank": "preranked GSEA",
}
X_AXES = {"gene_ratio": "gene ratio (overlap / set size)", "neg_log10_padj": "-log10 adjusted p-value"}

_TERM_PREFIX = re.compile(
    r"^(GOBP|GOCC|GOMF|GO|KEGG(_MEDICUS)?(_REFERENCE)?|REACTOME|HALLMARK|WP|BIOCARTA|PID)_", re.IGNORECASE
)
_MAX_TERM_CHARS = 60
_WRAP_CHARS = 45


def shorten_term(term: str) -> str:
    """Readable axis label: drop collection prefixes and underscores, tame SHOUTING, wrap and cut."""
    text = _TERM_PREFIX.sub("", str(term)).replace("_", " ").strip()
    if text.isupper():
        text = text.lower()
    if len(text) > _MAX_TERM_CHARS:
        text = text[: _MAX_TERM_CHARS - 1].rstrip() + "…"
    return textwrap.fill(text, _WRAP_CHARS)


def _padj_norm(padj: np.ndarray) -> LogNorm:
    positive = padj[padj > 0]
    low = positive.min() if positive.size else 1e-300
    high = padj.max() if padj.max() > low else low * 10
    return LogNorm(vmin=low, vmax=high)


@styled
def plot_enrichment_dots(
    enrich_tsv,
    out=None,
    analysis: str = "ora_up",
    top: int = 15,
    x: str = "gene_ratio",
    padj_threshold: float = 0.05,
    *,
    dataset: str = "",
    label: str = "",
    mode: str = "",
) -> dict:
    """Top ``top`` terms of one ``analysis`` with padj < ``padj_threshold``.

    ORA: dot plot, ``x`` = ``gene_ratio`` or ``neg_log10_padj``, size = overlap, colour = padj.
    Prerank: NES per term, colour = padj (``x`` is ignored). Returns ``n_tested``,
    ``n_significant`` and ``terms`` (the raw term names shown, top to bottom).
    """
    if analysis not in ANALYSES:
        raise ValueError(f"analysis must be one of {sorted(ANALYSES)}, got {analysis!r}")
    if x not in X_AXES:
        raise ValueError(f"x must be one of {sorted(X_AXES)}, got {x!r}")
    is_ora = analysis.startswith("ora")
    required = ["analysis", "term", "size", "pvalue", "padj"] + (["overlap"] if is_ora else ["nes"])
    df = read_checked(enrich_tsv, required)
    df = df[df["analysis"] == analysis].copy()
    for col in required[2:]:
        df[col] = numeric(df, col, enrich_tsv)
    passing = df[df["padj"] < padj_threshold]
    source = Path(enrich_tsv).name.removesuffix(".tsv")
    what = f"{ANALYSES[analysis]}: {source}"
    title = {"dataset": dataset, "label": label, "mode": mode}

    if df.empty:
        message_figure(
            out, what, f"No {analysis} results in this file (analysis not run for this method or mode).", **title
        )
        return {"n_tested": 0, "n_significant": 0, "terms": []}
    if passing.empty:
        message_figure(
            out,
            what,
            f"No significant terms: none of {fmt_count(len(df))} tested gene sets has "
            f"adjusted p < {padj_threshold:g}.",
            **title,
        )
        return {"n_tested": len(df), "n_significant": 0, "terms": []}

    shown = passing.sort_values(["padj", "pvalue"], kind="stable").head(top).copy()
    # An underflowed padj of 0 would sit at infinity on a log axis; draw it at 1e-300 (colour
    # bars cannot invert a norm that starts at the smallest float).
    shown["padj"] = shown["padj"].clip(lower=1e-300)
    # Most significant at the top of the plot, as in clusterProfiler.
    ordered = shown.iloc[::-1] if is_ora else shown.sort_values("nes", kind="stable")
    labels = [shorten_term(t) for t in ordered["term"]]
    n_lines = sum(lbl.count("\n") + 1 for lbl in labels)
    fig, ax = new_figure(figsize=(7.2, max(3.4, 0.17 * n_lines + 0.12 * len(labels) + 1.9)))
    ypos = np.arange(len(ordered))
    norm = _padj_norm(ordered["padj"].to_numpy())
    if is_ora:
        xs = ordered["overlap"] / ordered["size"] if x == "gene_ratio" else -np.log10(ordered["padj"])
        overlap = ordered["overlap"].to_numpy()
        sizes = 30 + 220 * (overlap - overlap.min()) / max(np.ptp(overlap), 1)
        points = ax.scatter(
            xs, ypos, s=sizes, c=ordered["padj"], cmap=PADJ_CMAP, norm=norm, edgecolors="black", lw=0.4, zorder=3
        )
        ax.set_xlabel(X_AXES[x])
        for value in sorted({int(overlap.min()), int(np.median(overlap)), int(overlap.max())}):
            ax.scatter(
                [], [], s=30 + 220 * (value - overlap.min()) / max(np.ptp(overlap), 1), c="#999999", label=f"{value}"
            )
        fig.legend(title="overlap (genes in both list and set)", loc="outside lower center", ncols=3, columnspacing=2.0)
        xs_range = (float(np.min(xs)), float(np.max(xs)))
        pad = 0.1 * (xs_range[1] - xs_range[0] or abs(xs_range[1]) or 1)
        ax.set_xlim(xs_range[0] - pad, xs_range[1] + pad)
    else:
        nes = ordered["nes"].to_numpy()
        ax.hlines(ypos, 0, nes, color=[UP_COLOUR if v > 0 else DOWN_COLOUR for v in nes], lw=1.2, alpha=0.6)
        points = ax.scatter(
            nes, ypos, s=70, c=ordered["padj"], cmap=PADJ_CMAP, norm=norm, edgecolors="black", lw=0.4, zorder=3
        )
        ax.axvline(0, color="#666666", lw=0.7)
        ax.set_xlabel("normalised enrichment score (NES)")
    ax.set_yticks(ypos, labels, fontsize=8)
    ax.set_ylim(-0.7, len(ordered) - 0.3)
    ax.grid(axis="x", alpha=0.3, lw=0.5)
    colorbar = fig.colorbar(
        points,
        ax=ax,
        shrink=min(0.7, 3.0 / fig.get_figheight() + 0.2),
        pad=0.02,
        aspect=15,
        label="adjusted p-value (BH)",
    )
    colorbar.ax.invert_yaxis()  # most significant at the top, like the term order
    set_title(
        fig,
        f"{what} ({len(shown)} of {fmt_count(len(passing))} terms with padj < {padj_threshold:g}; "
        f"{fmt_count(len(df))} tested)",
        **title,
    )
    savefig(fig, out)
    return {"n_tested": len(df), "n_significant": len(passing), "terms": list(shown["term"])}


__all__ = ["CAPTIONS", "ANALYSES", "plot_enrichment_dots", "shorten_term"]
