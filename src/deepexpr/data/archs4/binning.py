"""Binning-By-Gene: per-gene expression bins, fitted once and applied to any sample, written out of core.

Each sample is scaled to 1e7 total counts and log10(x + 1) transformed (:func:`~.read.scale_log`,
the original's normalisation). A gene's value then becomes a bin in 1..B: zeros go to bin 1 and non-zero values to
bins 2..B, roughly equal-count quantiles of that gene's non-zero values.

- ``corrected`` (R1, :func:`fit_boundaries` + :func:`transform`): the B-2 interior quantiles of each
  gene's non-zero values in a subsample of training samples are stored once; every sample, in
  training or later, gets ``bin = 2 + searchsorted(boundaries, x, side="right")``. Deterministic,
  independent of which other samples are processed with it, and equal values share a bin.
- ``faithful`` (:func:`rank_bins`): the original's rank binning over all samples at once (ties in
  argsort order), kept for comparison; it needs the whole gene row in memory.

:func:`write_binned` streams the ARCHS4 file block by block into a memory-mapped uint16 matrix
(samples x genes, R9), and :class:`BinnedDataset` serves its rows to a torch DataLoader, so peak
memory depends on the block and the mini-batch, not on the number of samples.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import torch

from deepexpr.data.archs4.read import DEFAULT_BLOCK, SCALE, Archs4File, GeneMap, iter_sample_blocks, scale_log
from deepexpr.errors import InputError
from deepexpr.io import atomic_path, read_json, write_json

PathLike = str | os.PathLike

BINS_FILE = "bins.u16"
META_FILE = "binned.json"


def fit_boundaries(
    archs4: Archs4File,
    genes: GeneMap,
    train_samples: Sequence[int],
    n_bins: int = 2000,
    fraction: float = 0.1,
    seed: int = 0,
    block: int = DEFAULT_BLOCK,
) -> np.ndarray:
    """Per-gene bin boundaries (genes x (n_bins - 2), float32) from a subsample of training samples.

    ``fraction`` of ``train_samples`` (at least one) is drawn with ``seed``; the memory needed is
    genes x subsample. A gene never non-zero in the subsample gets +inf boundaries (every
    non-zero value then falls in bin 2).
    """
    if n_bins < 3:
        raise InputError("generain.n_bins", f"expected >= 3 (bin 1 = zero, then >= 2 levels), got {n_bins}")
    train_samples = np.asarray(train_samples, dtype=np.int64)
    rng = np.random.default_rng(seed)
    n_pick = max(1, int(round(fraction * len(train_samples))))
    picked = np.sort(rng.choice(train_samples, size=n_pick, replace=False))
    values = np.concatenate(
        [scale_log(genes.apply(counts)) for _, counts in iter_sample_blocks(archs4.path, picked, block)], axis=1
    )
    levels = np.linspace(0.0, 1.0, n_bins)[1:-1]
    boundaries = np.full((len(genes.genes), n_bins - 2), np.inf, dtype=np.float32)
    for g, row in enumerate(values):
        nonzero = row[row > 0]
        if nonzero.size:
            boundaries[g] = np.quantile(nonzero, levels)
    return boundaries


def save_boundaries(path: PathLike, genes: Sequence[str], boundaries: np.ndarray) -> None:
    """Write genes and boundaries to one ``.npz`` file (atomically)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, genes=np.asarray(genes, dtype=str), boundaries=boundaries, scale=SCALE)


def load_boundaries(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(genes, boundaries)`` from a file written by :func:`save_boundaries`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in ("genes", "boundaries") if key not in data]
            if missing:
                raise InputError(path, f"not a boundary file: no {missing[0]!r} array")
            genes, boundaries = data["genes"].astype(object), data["boundaries"]
    except (OSError, ValueError) as error:
        raise InputError(path, f"not a boundary file ({error})") from None
    if boundaries.ndim != 2 or boundaries.shape[0] != len(genes):
        raise InputError(path, f"'boundaries' must be genes x (bins - 2); got {boundaries.shape} for {len(genes)} genes")
    return genes, boundaries


def check_genes(genes: Sequence[str], boundary_genes: Sequence[str], source: PathLike) -> None:
    """Raise an InputError naming ``source`` unless the data's genes are the boundary file's, in order."""
    genes, boundary_genes = list(map(str, genes)), list(map(str, boundary_genes))
    if genes != boundary_genes:
        missing = sorted(set(boundary_genes) - set(genes))[:3]
        extra = sorted(set(genes) - set(boundary_genes))[:3]
        raise InputError(
            source,
            f"boundaries are for another gene set ({len(boundary_genes)} genes vs the data's {len(genes)}; "
            f"missing from the data e.g. {missing}, not in the file e.g. {extra}; same genes in the same order expected)",
        )


@numba.njit(cache=True, nogil=True)
def _search_bins(values, boundaries, out):
    # Compiled because a numpy loop over genes spends 2-4x the raw HDF5 read time in per-gene
    # searchsorted calls and masking (bench/bench_generain.py); the same binary search as
    # np.searchsorted(side="right"), float32 boundaries compared as float64 like numpy does.
    n_bounds = boundaries.shape[1]
    for g in range(values.shape[0]):
        row = boundaries[g]
        for s in range(values.shape[1]):
            x = values[g, s]
            if x > 0:
                lo, hi = 0, n_bounds
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if np.float64(row[mid]) <= x:
                        lo = mid + 1
                    else:
                        hi = mid
                out[g, s] = lo + 2
            else:
                out[g, s] = 1
    return out


def transform(values: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Bins (uint16, genes x samples) of log values (genes x samples): 1 for zero, else
    ``2 + searchsorted(boundaries[gene], value, side="right")``."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    out = np.empty(values.shape, dtype=np.uint16)
    return _search_bins(values, np.ascontiguousarray(boundaries), out)


def bin_new_samples(counts: pd.DataFrame, boundary_path: PathLike) -> pd.DataFrame:
    """Bins (samples x genes, uint16) of new samples given as raw counts, genes x samples.

    The same path as training (scaling, then the stored boundaries of ``boundary_path``), so a
    sample gets the bins it would have had in the training data. Rows are matched by gene name;
    genes of the boundary file that ``counts`` lacks are an InputError naming the file.
    """
    genes, boundaries = load_boundaries(boundary_path)
    missing = pd.Index(genes).difference(counts.index)
    if len(missing):
        check_genes(counts.index, genes, boundary_path)
    values = scale_log(counts.loc[list(genes)].to_numpy(dtype=np.float64))
    return pd.DataFrame(transform(values, boundaries).T, index=counts.columns, columns=list(genes))


def rank_bins(values: np.ndarray, n_bins: int = 2000) -> np.ndarray:
    """The original's rank binning of genes x samples values over all samples (faithful R1).

    Per gene: zeros -> 1; non-zero values ranked 0..n-1 in argsort order (ties broken arbitrarily),
    bin = floor(rank / ((n - 1) / (B - 1))) + 2 clipped to B.
    """
    bins = np.ones(values.shape, dtype=np.uint16)
    for g, row in enumerate(values):
        nonzero = np.flatnonzero(row > 0)
        if nonzero.size == 0:
            continue
        rank = np.empty(nonzero.size, dtype=np.float64)
        rank[np.argsort(row[nonzero])] = np.arange(nonzero.size)
        step = (nonzero.size - 1) / (n_bins - 1) if nonzero.size > 1 else 1.0
        bins[g, nonzero] = np.minimum(np.floor(rank / step) + 2, n_bins)
    return bins


def write_binned(
    archs4: Archs4File,
    genes: GeneMap,
    samples: Sequence[int],
    split: Sequence[str],
    boundaries: np.ndarray,
    out_dir: PathLike,
    boundary_source: PathLike = "boundaries",
    boundary_genes: Sequence[str] | None = None,
    block: int = DEFAULT_BLOCK,
) -> Path:
    """Bin ``samples`` (file columns, with their ``split`` labels) into ``out_dir`` block by block.

    Writes ``bins.u16`` (memory-mapped uint16, samples x genes, samples in increasing column order)
    and ``binned.json`` (genes, sample accessions, series, split, n_bins). ``boundary_genes`` (the
    boundary file's genes) must equal the map's genes, else an InputError naming
    ``boundary_source``. Files appear only when complete (written to a temporary directory first).
    """
    if boundary_genes is not None:
        check_genes(genes.genes, boundary_genes, boundary_source)
    samples = np.asarray(samples, dtype=np.int64)
    order = np.argsort(samples)
    samples, split = samples[order], np.asarray(split, dtype=object)[order]
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".part", dir=out_dir.parent))
    try:
        bins = np.memmap(tmp / BINS_FILE, dtype=np.uint16, mode="w+", shape=(len(samples), len(genes.genes)))
        row = 0
        for _, counts in iter_sample_blocks(archs4.path, samples, block):
            block_bins = transform(scale_log(genes.apply(counts)), boundaries)
            bins[row : row + block_bins.shape[1]] = block_bins.T
            row += block_bins.shape[1]
        bins.flush()
        del bins
        meta = archs4.samples.iloc[samples]
        write_json(
            {
                "genes": [str(g) for g in genes.genes],
                "n_bins": int(boundaries.shape[1] + 2),
                "samples": [str(s) for s in meta["geo_accession"]],
                "series": [str(s) for s in meta["series_id"]],
                "split": [str(s) for s in split],
            },
            tmp / META_FILE,
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out_dir


class BinnedDataset(torch.utils.data.Dataset):
    """Rows of a binned directory (:func:`write_binned`) as int64 tensors of gene bins.

    The matrix is opened as a read-only memmap, so only the rows a mini-batch touches are read.
    ``split`` restricts to one split (``None`` = all samples).
    """

    def __init__(self, path: PathLike, split: str | None = "train"):
        self.path = Path(path)
        if not (self.path / META_FILE).is_file() or not (self.path / BINS_FILE).is_file():
            raise InputError(self.path, f"not a binned directory (expected {BINS_FILE} and {META_FILE})")
        meta = read_json(self.path / META_FILE)
        self.genes = np.asarray(meta["genes"], dtype=object)
        self.n_bins = int(meta["n_bins"])
        self.samples = pd.DataFrame({k: meta[k] for k in ("samples", "series", "split")})
        self.bins = np.memmap(self.path / BINS_FILE, dtype=np.uint16, mode="r", shape=(len(self.samples), len(self.genes)))
        self.rows = np.arange(len(self.samples)) if split is None else np.flatnonzero(self.samples["split"] == split)
        if len(self.rows) == 0:
            raise InputError(self.path, f"no samples in split {split!r} (splits: {sorted(set(meta['split']))})")

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.bins[self.rows[i]].astype(np.int64))

    def matrix(self) -> np.ndarray:
        """All rows of the split as one samples x genes array (for baselines on small data)."""
        return np.asarray(self.bins[self.rows])
