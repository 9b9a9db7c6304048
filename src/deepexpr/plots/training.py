"""Every model's training figures: latent space (NB-VAE, beside the PCA baseline) and loss curves
(NB-VAE, GENEX: one function, each model's history panels).

Like the other plot modules, each function reads the tables the workflow wrote, draws one figure
(into ``ax``/``fig`` when given), writes it to ``out`` when given and returns it, with the numbers
it shows in ``figure.numbers`` (:func:`deepexpr.plots.style.styled`).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import linalg

from deepexpr.errors import InputError
from deepexpr.plots.style import (
    FIGSIZE_GRID,
    FIGSIZE_SINGLE,
    MARKERS,
    PALETTE,
    add_note,
    annotate_points,
    new_figure,
    numeric,
    plt,
    read_checked,
    savefig,
    seed_from_path,
    set_title,
    styled,
)

CAPTIONS = {
    "latent": "NB-VAE latent space: posterior means of the first two latent dimensions for every sample, coloured "
    "and shaped by the design; the first seed is solid, the other seeds are faint after a Procrustes alignment "
    "(rotation, reflection, scale, shift) to it, because latent axes are arbitrary per seed.",
    "pca_latent": "Baseline for the latent plot: the samples on the first two principal components of the "
    "log-normalised expression.",
    "loss": "Training loss, ELBO, KL term and KL weight (beta) per epoch for each seed, as recorded in the "
    "training history; y is log-scaled where all values are positive.",
}

_LATENT_COLUMN = re.compile(r"^z(\d+)$")
_MAX_SAMPLE_LABELS = 30  # beyond this, sample names would cover the points


# --------------------------------------------------------------------------------------------------------------------
# Latent space


def _levels(values: pd.Series) -> list:
    """Levels in order of first appearance: the sample sheet's order (e.g. virgin, pregnant, lactate)."""
    return list(dict.fromkeys(values.dropna().astype(str)))


def _design_scatter(
    ax,
    frame: pd.DataFrame,
    xcol: str,
    ycol: str,
    color_by: str,
    marker_by: str | None,
    alpha: float = 1.0,
    size: float = 60,
    edge: bool = True,
    legend: bool = True,
) -> None:
    colours = {lvl: PALETTE[i % len(PALETTE)] for i, lvl in enumerate(_levels(frame[color_by]))}
    markers = {lvl: MARKERS[i % len(MARKERS)] for i, lvl in enumerate(_levels(frame[marker_by]))} if marker_by else {}
    groups = frame.groupby([color_by] + ([marker_by] if marker_by else []), sort=False, observed=True)
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        ax.scatter(
            part[xcol],
            part[ycol],
            c=colours[str(key[0])],
            marker=markers.get(str(key[-1]), "o") if marker_by else "o",
            s=size,
            alpha=alpha,
            edgecolors="white" if edge else "none",
            linewidths=0.6,
            zorder=3 if edge else 2,
        )
    if not legend:
        return
    handles = [plt.Line2D([], [], ls="", marker="o", color=c, markersize=7, label=lvl) for lvl, c in colours.items()]
    first = ax.legend(handles=handles, title=color_by, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if marker_by:
        ax.add_artist(first)
        handles = [
            plt.Line2D([], [], ls="", marker=m, color="#555555", markersize=7, label=lvl) for lvl, m in markers.items()
        ]
        ax.legend(handles=handles, title=marker_by, loc="upper left", bbox_to_anchor=(1.01, 0.5))


def _label_samples(ax, frame: pd.DataFrame, xcol: str, ycol: str) -> None:
    if len(frame) <= _MAX_SAMPLE_LABELS:
        annotate_points(ax, frame[xcol], frame[ycol], frame["sample"])


def _procrustes_to(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, float]:
    """Map ``other`` onto ``reference`` by rotation/reflection, isotropic scale and shift.

    Latent axes of separately trained VAEs are only defined up to such a transform, so seeds are
    compared after this fit. Returns the aligned points and the residual RMS distance.
    """
    ref_mean, other_mean = reference.mean(axis=0), other.mean(axis=0)
    ref_c, other_c = reference - ref_mean, other - other_mean
    norm = float((other_c**2).sum())
    if norm == 0:
        aligned = np.repeat(ref_mean[None, :], len(other), axis=0)
    else:
        rotation, singular_sum = linalg.orthogonal_procrustes(other_c, ref_c)
        aligned = (singular_sum / norm) * other_c @ rotation + ref_mean
    rms = float(np.sqrt(((aligned - reference) ** 2).sum(axis=1).mean()))
    return aligned, rms


def _read_latent(path, color_by: str, marker_by: str | None) -> tuple[pd.DataFrame, list[str]]:
    design = [color_by] + ([marker_by] if marker_by else [])
    df = read_checked(path, ["sample"] + design)
    z_cols = sorted((c for c in df.columns if _LATENT_COLUMN.match(str(c))), key=lambda c: int(c[1:]))
    if len(z_cols) < 2:
        raise InputError(path, f"need latent columns z1 and z2 to draw a 2-D latent plot; found {z_cols or 'none'}")
    for col in z_cols[:2]:
        df[col] = numeric(df, col, path)
    df["sample"] = df["sample"].astype(str)
    return df, z_cols


@styled
def plot_latent(
    latent_tsv_paths: Sequence,
    out=None,
    color_by: str = "cell_type",
    marker_by: str | None = "status",
    *,
    dataset: str = "",
    label: str = "",
    mode: str = "",
) -> dict:
    """2-D posterior means per sample; first seed solid, other seeds Procrustes-aligned and faint.

    Returns ``n_seeds``, ``n_samples``, ``latent_dim`` and ``procrustes_rms`` (per extra seed, in
    the shown seed's latent units).
    """
    paths = list(latent_tsv_paths)
    if not paths:
        raise InputError("latent_tsv_paths", "no latent.tsv files given")
    first, z_cols = _read_latent(paths[0], color_by, marker_by)
    x, y = z_cols[:2]
    reference = first[[x, y]].to_numpy()

    fig, ax = new_figure(figsize=FIGSIZE_SINGLE)
    rms_by_seed = []
    for k, path in enumerate(paths[1:], start=1):
        other, _ = _read_latent(path, color_by, marker_by)
        if set(other["sample"]) != set(first["sample"]):
            raise InputError(path, f"samples differ from {paths[0]}; every seed must embed the same samples")
        other = other.set_index("sample").loc[first["sample"]].reset_index()
        aligned, rms = _procrustes_to(reference, other[[x, y]].to_numpy())
        rms_by_seed.append(rms)
        shadow = first.copy()
        shadow[x], shadow[y] = aligned[:, 0], aligned[:, 1]
        _design_scatter(ax, shadow, x, y, color_by, marker_by, alpha=0.3, size=30, edge=False, legend=False)
    _design_scatter(ax, first, x, y, color_by, marker_by)
    _label_samples(ax, first, x, y)
    ax.set_xlabel(f"{x} (posterior mean)")
    ax.set_ylabel(f"{y} (posterior mean)")

    shown = seed_from_path(paths[0], 0)
    set_title(fig, f"NB-VAE latent space ({shown}; {len(first)} samples)", dataset, label, mode)
    notes = []
    if len(paths) > 1:
        notes.append(
            f"Faint points: the other {len(paths) - 1} seed(s), aligned to {shown} by rotation/reflection, scale and "
            f"shift (latent axes are arbitrary per seed); RMS distance after alignment "
            f"{min(rms_by_seed):.3g}-{max(rms_by_seed):.3g}."
        )
    if len(z_cols) > 2:
        notes.append(f"Latent space has {len(z_cols)} dimensions; only z1 and z2 are shown.")
    if notes:
        add_note(fig, " ".join(notes))
    savefig(fig, out)
    return {"n_seeds": len(paths), "n_samples": len(first), "latent_dim": len(z_cols), "procrustes_rms": rms_by_seed}


@styled
def plot_pca_latent(
    pca_tsv,
    out=None,
    color_by: str = "cell_type",
    marker_by: str | None = "status",
    *,
    dataset: str = "",
    label: str = "",
    mode: str = "",
) -> dict:
    """PCA(2) baseline from a table with columns sample, PC1, PC2 and the design columns.

    Optional columns ``PC1_variance_ratio``/``PC2_variance_ratio`` (one value repeated per row)
    are shown in the axis labels. Returns ``n_samples``.
    """
    design = [color_by] + ([marker_by] if marker_by else [])
    df = read_checked(pca_tsv, ["sample", "PC1", "PC2"] + design)
    for col in ("PC1", "PC2"):
        df[col] = numeric(df, col, pca_tsv)
    fig, ax = new_figure(figsize=FIGSIZE_SINGLE)
    _design_scatter(ax, df, "PC1", "PC2", color_by, marker_by)
    _label_samples(ax, df, "PC1", "PC2")
    for col, setter in (("PC1", ax.set_xlabel), ("PC2", ax.set_ylabel)):
        ratio_col = f"{col}_variance_ratio"
        ratio = numeric(df, ratio_col, pca_tsv).iloc[0] if ratio_col in df.columns else np.nan
        setter(f"{col} ({ratio:.1%} of variance)" if np.isfinite(ratio) else col)
    set_title(fig, f"PCA baseline: first two principal components ({len(df)} samples)", dataset, label, mode)
    savefig(fig, out)
    return {"n_samples": len(df)}


# --------------------------------------------------------------------------------------------------------------------
# Training curves

#: GENEX history columns drawn by :func:`plot_loss_curves` (column, title).
GENEX_HISTORY_PANELS = [
    ("d_loss", "critic loss"),
    ("g_loss", "generator loss"),
    ("wasserstein", "Wasserstein estimate (real - corrected)"),
    ("rec", "cycle reconstruction"),
]

#: NB-VAE history columns drawn by :func:`plot_loss_curves` (column, title).
NBVAE_HISTORY_PANELS = [
    ("loss", "training loss"),
    ("elbo", "ELBO"),
    ("kl", "KL divergence"),
    ("beta", "KL weight (beta)"),
]


@styled
def plot_loss_curves(
    history_tsv_paths: Sequence,
    out=None,
    *,
    panels: Sequence[tuple[str, str]] = NBVAE_HISTORY_PANELS,
    model: str = "NB-VAE",
    dataset: str = "",
    label: str = "",
    mode: str = "",
) -> dict:
    """Four training-history columns per epoch (``panels``: column, title; NB-VAE's loss, ELBO, KL
    and beta by default), one line per seed; log y where every value is positive (never for beta).

    Returns ``n_seeds``, ``epochs`` (last epoch per seed) and ``final_loss`` (the first panel's
    column) per seed.
    """
    paths = list(history_tsv_paths)
    if not paths:
        raise InputError("history_tsv_paths", "no history.tsv files given")
    histories = []
    for path in paths:
        df = read_checked(path, ["epoch"] + [col for col, _ in panels])
        histories.append({col: numeric(df, col, path).to_numpy() for col in ["epoch"] + [c for c, _ in panels]})

    fig, axes = new_figure(2, 2, figsize=FIGSIZE_GRID, sharex=True)
    for ax, (col, title) in zip(axes.ravel(), panels):
        values = np.concatenate([h[col] for h in histories])
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            ax.text(0.5, 0.5, f"{col} not recorded", ha="center", va="center", transform=ax.transAxes, color="#666666")
            ax.set_yticks([])
        for k, (path, h) in enumerate(zip(paths, histories)):
            ax.plot(h["epoch"], h[col], color=PALETTE[k % len(PALETTE)], lw=1.2, label=seed_from_path(path, k))
        if finite.size and (finite > 0).all() and col != "beta":
            ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(alpha=0.3, lw=0.5)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    axes[0, 0].legend(loc="upper right", ncols=1 if len(paths) <= 5 else 2)
    set_title(fig, f"{model} training history ({len(paths)} seed(s))", dataset, label, mode)
    savefig(fig, out)
    return {
        "n_seeds": len(paths),
        "epochs": [float(np.nanmax(h["epoch"])) if h["epoch"].size else np.nan for h in histories],
        "final_loss": [float(h[panels[0][0]][-1]) if h[panels[0][0]].size else np.nan for h in histories],
    }


__all__ = [
    "CAPTIONS",
    "GENEX_HISTORY_PANELS",
    "NBVAE_HISTORY_PANELS",
    "plot_latent",
    "plot_loss_curves",
    "plot_pca_latent",
]
