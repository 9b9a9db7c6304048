"""One call from an ARCHS4 file to a binned directory: QC, split, gene universe, boundaries, bins."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from deepexpr.data.archs4.binning import (
    BINS_FILE,
    META_FILE,
    BinnedDataset,
    bin_new_samples,
    fit_boundaries,
    rank_bins,
    save_boundaries,
    write_binned,
)
from deepexpr.data.archs4.read import (
    DEFAULT_BLOCK,
    gene_map,
    iter_sample_blocks,
    open_archs4,
    sample_qc,
    scale_log,
    split_samples,
)
from deepexpr.errors import InputError
from deepexpr.io import write_json, write_table

PathLike = str | os.PathLike


def prepare_binned(
    path: PathLike,
    out_dir: PathLike,
    binning: str = "boundaries",
    duplicates: str = "sum",
    split: str = "series",
    n_bins: int = 2000,
    boundary_fraction: float = 0.1,
    fractions: tuple[float, float, float] = (0.9, 0.05, 0.05),
    vocabulary: list[str] | None = None,
    qc: dict | None = None,
    max_samples: int | None = None,
    seed: int = 0,
    block: int = DEFAULT_BLOCK,
) -> Path:
    """Bin the QC-passing samples of ``path`` into ``out_dir`` (see :mod:`.binning`); return ``out_dir``.

    Also writes ``qc.tsv`` (per-sample QC table) and, for ``binning="boundaries"``, the
    ``boundaries.npz`` file that bins new samples the same way. ``binning="rank"`` (faithful R1)
    ranks each gene over all kept samples in memory, as the original did; its memory grows with
    the number of samples. ``max_samples`` keeps a seeded random subset of the QC-passing samples.
    """
    archs4 = open_archs4(path)
    qc_table = sample_qc(archs4, **(qc or {}), block=block)
    keep = np.flatnonzero(qc_table["keep"].to_numpy())
    if max_samples is not None and len(keep) > max_samples:
        keep = np.sort(np.random.default_rng(seed).choice(keep, size=max_samples, replace=False))
    labels = split_samples(qc_table["series_id"].to_numpy()[keep], split, fractions, seed)
    genes = gene_map(archs4, duplicates, vocabulary, samples=keep, block=block)
    out_dir = Path(out_dir)
    if binning == "boundaries":
        boundaries = fit_boundaries(archs4, genes, keep[labels == "train"], n_bins, boundary_fraction, seed, block)
        write_binned(archs4, genes, keep, labels, boundaries, out_dir, block=block)
        save_boundaries(out_dir / "boundaries.npz", genes.genes, boundaries)
    elif binning == "rank":
        values = np.concatenate([scale_log(genes.apply(c)) for _, c in iter_sample_blocks(archs4.path, keep, block)], 1)
        _write_rank_binned(out_dir, rank_bins(values, n_bins), genes.genes, archs4.samples.iloc[keep], labels, n_bins)
    else:
        raise InputError("generain.binning", f"expected 'boundaries' or 'rank', got {binning!r}")
    write_table(qc_table, out_dir / "qc.tsv")
    return out_dir


def _write_rank_binned(out_dir: Path, bins: np.ndarray, genes, samples: pd.DataFrame, labels, n_bins: int) -> None:
    """The faithful path's output in the same directory format as :func:`~.binning.write_binned`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    matrix = np.memmap(out_dir / BINS_FILE, dtype=np.uint16, mode="w+", shape=bins.T.shape)
    matrix[:] = bins.T
    matrix.flush()
    write_json(
        {
            "genes": [str(g) for g in genes],
            "n_bins": int(n_bins),
            "samples": [str(s) for s in samples["geo_accession"]],
            "series": [str(s) for s in samples["series_id"]],
            "split": [str(s) for s in labels],
        },
        out_dir / META_FILE,
    )


def new_sample_agreement(archs4_path: PathLike, binned: PathLike, n_samples: int = 200):
    """Re-bin up to ``n_samples`` binned samples (evenly spaced) through the new-sample path.

    Returns ``(values, training_bins, agreement)``: log10 scaled values and training bins (samples x
    genes DataFrames) of those samples, and per gene the fraction of samples whose
    :func:`~.binning.bin_new_samples` bins equal the training bins (NaN for the faithful rank binning,
    which stores no boundaries and cannot bin new samples alike).
    """
    data = BinnedDataset(binned, split=None)
    boundary_file = Path(binned) / "boundaries.npz"
    archs4 = open_archs4(archs4_path)
    rows = np.unique(np.linspace(0, len(data) - 1, min(len(data), n_samples)).astype(np.int64))
    names = data.samples["samples"].to_numpy()[rows]
    columns = pd.Index(archs4.samples["geo_accession"]).get_indexer(names)
    genes = gene_map(archs4, "sum" if boundary_file.exists() else "max_mean", vocabulary=list(data.genes))
    counts = np.concatenate([genes.apply(c) for _, c in iter_sample_blocks(archs4.path, columns)], axis=1)
    # Blocks come in increasing column order; put the samples back in binned-row order.
    counts = pd.DataFrame(counts[:, np.argsort(np.argsort(columns))], index=genes.genes, columns=names)
    counts = counts.loc[list(data.genes)]
    training = pd.DataFrame(np.asarray(data.bins[rows]), index=names, columns=data.genes)
    if boundary_file.exists():
        agreement = (bin_new_samples(counts, boundary_file).to_numpy() == training.to_numpy()).mean(axis=0)
    else:
        agreement = np.full(len(data.genes), np.nan)
    values = pd.DataFrame(scale_log(counts.to_numpy(dtype=np.float64)).T, index=names, columns=counts.index)
    return values, training, pd.Series(agreement, index=data.genes, name="agreement")
