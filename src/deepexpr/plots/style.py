"""Shared look and plumbing for every deepexpr figure.

Figures are drawn only from the tables the workflow wrote, so this module also
holds the small readers that check a table has the columns a figure needs and
fail with an :class:`~deepexpr.errors.InputError` naming the file and column.

Every public plot function is wrapped by :func:`styled`, which makes it usable in a notebook as
well as in a rule: ``out`` is optional, ``ax=``/``fig=`` draw into the caller's matplotlib objects,
and the function returns the :class:`~matplotlib.figure.Figure`.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deepexpr.errors import InputError
from deepexpr.io import atomic_path, read_table

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = [
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",
]
UP_COLOUR = "#D55E00"
DOWN_COLOUR = "#0072B2"
NEUTRAL_COLOUR = "#9E9E9E"
HIGHLIGHT_COLOUR = "#CC79A7"
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
PADJ_CMAP = "viridis"  # with a log scale: the most significant terms get the darkest colour

FIGSIZE_SINGLE = (5.8, 4.8)
FIGSIZE_WIDE = (10.5, 4.6)
FIGSIZE_GRID = (9.5, 7.0)
DPI = 150
TITLE_WIDTH = 90  # characters before a title line wraps

_RC = {
    "font.size": 9.5,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    # Text stays text in SVG, and ids are stable so a rerun writes identical files.
    "svg.fonttype": "none",
    "svg.hashsalt": "deepexpr",
}

_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


@dataclass
class _Target:
    """Where the running plot function draws: the caller's axes or figure, else a new figure."""

    ax: object = None
    fig: object = None
    figure: object = None


_TARGET: contextvars.ContextVar[_Target | None] = contextvars.ContextVar("deepexpr_plot_target", default=None)


def styled(plot_function):
    """Make a plot function usable in rules and notebooks alike, under the house rcParams.

    The wrapped function takes two more keywords: ``ax`` (a single-panel figure is drawn into
    these axes) or ``fig`` (the panels are added to this figure); ``out`` None writes no file and
    leaves the figure open. It returns the Figure; the numbers it shows (the dict the drawing
    function returns, what tests and callers check) are ``figure.numbers``.
    """

    @functools.wraps(plot_function)
    def wrapper(*args, ax=None, fig=None, **kwargs):
        target = _Target(ax=ax, fig=fig)
        token = _TARGET.set(target)
        try:
            with plt.rc_context(_RC):
                numbers = plot_function(*args, **kwargs)
        finally:
            _TARGET.reset(token)
        target.figure.numbers = numbers
        return target.figure

    signature = inspect.signature(plot_function)
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in ("ax", "fig")]
    wrapper.__signature__ = signature.replace(
        parameters=[*signature.parameters.values(), *extra], return_annotation="matplotlib.figure.Figure"
    )
    return wrapper


def new_figure(nrows: int = 1, ncols: int = 1, figsize=FIGSIZE_SINGLE, **kwargs):
    """(figure, axes): ``plt.subplots`` with constrained layout, which leaves room for the
    multi-line titles; or the axes/figure the caller passed to the :func:`styled` function."""
    target = _TARGET.get() or _Target()
    if target.ax is not None:
        if (nrows, ncols) != (1, 1):
            raise InputError("ax", f"this figure has {nrows} x {ncols} panels; pass fig= instead of ax=")
        figure, axes = target.ax.figure, target.ax
    elif target.fig is not None:
        figure, axes = target.fig, target.fig.subplots(nrows, ncols, **kwargs)
    else:
        figure, axes = plt.subplots(nrows, ncols, figsize=figsize, layout="constrained", **kwargs)
    target.figure = figure
    return figure, axes


def annotate_points(ax, xs, ys, labels, fontsize: float = 7.5) -> int:
    """Label points without covering earlier labels; a label with no free spot nearby is left out.

    Tries right of the point at 0, +1, -1, +2, ... line heights, then the same on the left.
    Call after everything else is drawn on ``ax``: positions are measured on the current layout.
    Returns the number of labels placed.
    """
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    step = fontsize * 1.3
    shifts = [0, 1, -1, 2, -2, 3, -3]
    candidates = [(side, shift * step) for side in (1, -1) for shift in shifts]
    placed = []
    for x, y, text in zip(xs, ys, labels):
        for side, dy in candidates:
            style = {
                "xytext": (4 * side, 2 + dy),
                "textcoords": "offset points",
                "fontsize": fontsize,
                "ha": "left" if side > 0 else "right",
                "color": "#222222",
            }
            label = ax.annotate(str(text), (x, y), **style)
            box = label.get_window_extent(renderer)  # the text alone, before any leader line
            label.remove()
            if not any(box.overlaps(other) for other in placed):
                placed.append(box)
                leader = {"arrowstyle": "-", "lw": 0.4, "color": "#777777"} if dy else None
                ax.annotate(str(text), (x, y), arrowprops=leader, **style)
                break
    return len(placed)


def savefig(fig, out: str | os.PathLike | None) -> Path | None:
    """Write ``fig`` atomically to ``out`` (format from the suffix) and close it; None: keep it open."""
    if out is None:
        return None
    out = Path(out)
    fmt = _FORMATS.get(out.suffix.lower())
    if fmt is None:
        plt.close(fig)
        raise InputError(out, f"unsupported figure suffix {out.suffix!r}; expected one of {sorted(_FORMATS)}")
    # No creation date in the file, so reruns are byte-identical.
    metadata = {"Date": None} if fmt == "svg" else {"CreationDate": None} if fmt == "pdf" else None
    try:
        with atomic_path(out) as tmp:
            # The temporary name ends in ".part", so the format must be given explicitly.
            fig.savefig(tmp, format=fmt, dpi=DPI, bbox_inches="tight", metadata=metadata)
    finally:
        plt.close(fig)
    return out


def context_line(dataset: str = "", label: str = "", mode: str = "") -> str:
    """``dataset | contrast label | mode <mode>``, leaving out the parts not given."""
    parts = [p for p in (dataset, label, f"mode: {mode}" if mode else "") if p]
    return " | ".join(parts)


def set_title(fig, what: str, dataset: str = "", label: str = "", mode: str = "") -> None:
    """Figure title: what is shown (bold line), then dataset, contrast label and mode."""
    lines = [what]
    context = context_line(dataset, label, mode)
    if context:
        lines.append(textwrap.fill(context, TITLE_WIDTH))
    fig.suptitle("\n".join(lines), fontsize=10.5, x=0.01, ha="left")


def add_note(fig, text: str) -> None:
    """A small caption-style note under the axes (e.g. what was left out and why)."""
    fig.text(0.01, -0.01, textwrap.fill(text, 130), ha="left", va="top", fontsize=8, color="#444444")


def message_figure(out, what: str, message: str, dataset: str = "", label: str = "", mode: str = "") -> Path | None:
    """A valid image that says why there is nothing to plot (instead of failing the rule)."""
    with plt.rc_context(_RC):
        fig, ax = new_figure(figsize=(FIGSIZE_SINGLE[0], 2.6))
        ax.axis("off")
        ax.text(0.5, 0.5, textwrap.fill(message, 60), ha="center", va="center", fontsize=11, color="#444444")
        set_title(fig, what, dataset, label, mode)
        return savefig(fig, out)


def seed_from_path(path, fallback: int) -> str:
    """Seed label taken from a ``.../seed<k>/...`` path component, else the list position."""
    match = re.search(r"seed(\d+)", str(path))
    return f"seed {match.group(1)}" if match else f"run {fallback}"


# --------------------------------------------------------------------------------------------------------------------
# Reading the result tables


def require_columns(df: pd.DataFrame, columns: Iterable[str], path) -> None:
    """Raise InputError naming ``path`` and every missing column."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            path, f"missing required column(s) {', '.join(missing)}; found columns: {', '.join(map(str, df.columns))}"
        )


def read_checked(path, columns: Iterable[str]) -> pd.DataFrame:
    """Read a result TSV and check it has ``columns``."""
    if not Path(path).is_file():
        raise InputError(path, "file does not exist")
    try:
        df = read_table(path)
    except pd.errors.EmptyDataError:
        raise InputError(path, "file is empty; expected a tab-separated table with a header") from None
    require_columns(df, columns, path)
    return df


def numeric(df: pd.DataFrame, column: str, path) -> pd.Series:
    """Column as floats (NA kept); text that is not a number is an input error."""
    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna() & df[column].notna()
    if bad.any():
        example = df.loc[bad, column].iloc[0]
        raise InputError(path, f"column {column}: expected numbers, found {example!r}")
    return values.astype(float)


_TRUE = {"true", "1", "1.0", "yes"}
_FALSE = {"false", "0", "0.0", "no"}


def boolean(df: pd.DataFrame, column: str, path, na_as: bool | None = None) -> pd.Series:
    """Column as bools. NA becomes ``na_as``; with ``na_as=None`` NA is an input error."""
    raw = df[column]
    if raw.dtype == bool:
        return raw
    text = raw.astype("string").str.strip().str.lower()
    result = pd.Series(np.zeros(len(raw), dtype=bool), index=raw.index)
    result[text.isin(_TRUE).fillna(False).to_numpy()] = True
    is_na = raw.isna().to_numpy()
    unknown = ~(text.isin(_TRUE) | text.isin(_FALSE)).fillna(False).to_numpy() & ~is_na
    if unknown.any():
        raise InputError(path, f"column {column}: expected True/False, found {raw[unknown].iloc[0]!r}")
    if is_na.any():
        if na_as is None:
            raise InputError(path, f"column {column}: expected True/False, found NA")
        result[is_na] = na_as
    return result


def gene_labels(df: pd.DataFrame) -> pd.Series:
    """Gene symbol where known, else the gene id."""
    if "symbol" in df.columns:
        return df["symbol"].where(df["symbol"].notna(), df["gene_id"]).astype(str)
    return df["gene_id"].astype(str)


def fmt_count(n: int) -> str:
    return f"{int(n):,}"
