"""Read an ARCHS4 gene-count HDF5 file in sample-column blocks.

Layout (ARCHS4 v2.x): ``data/expression`` holds integer counts with genes in rows and samples in
columns; ``meta/genes/<field>`` and ``meta/samples/<field>`` hold one 1-D array per field (strings
as bytes). Files are tens of GB, so nothing here reads the whole matrix: counts come in blocks of
sample columns (:func:`iter_sample_blocks`) and memory is bounded by the block.

Also here: the original's normalisation (:func:`scale_log`), sample QC (:func:`sample_qc`), the
gene universe with duplicate symbols summed or the highest-mean row kept (:func:`gene_map`, switch
R2) and the train/validation/test split by GEO series (:func:`split_samples`, switch R3).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepexpr.errors import InputError

PathLike = str | os.PathLike

EXPRESSION = "data/expression"
# v2.2+ names the symbol field ``symbol``; v2.1.2 files call it ``gene_symbol``.
SYMBOL_FIELDS = ("meta/genes/symbol", "meta/genes/gene_symbol")
#: Sample fields the pipeline relies on (QC, split, sample names).
REQUIRED_SAMPLE_FIELDS = ("geo_accession", "series_id", "singlecellprobability")
DEFAULT_BLOCK = 512
#: Per-sample total the counts are scaled to before log10(x + 1) (the original's, not CPM).
SCALE = 1e7


def scale_log(counts: np.ndarray) -> np.ndarray:
    """log10(count / sample total x 1e7 + 1) for a genes x samples block (all-zero samples stay 0)."""
    totals = counts.sum(axis=0, keepdims=True)
    return np.log10(counts / np.where(totals > 0, totals, 1.0) * SCALE + 1.0)


def _decode(values: np.ndarray) -> np.ndarray:
    """HDF5 strings come back as bytes; decode them to str."""
    if values.dtype.kind in "SO":
        return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values], dtype=object)
    return values


@dataclass(frozen=True)
class Archs4File:
    """A validated ARCHS4 file: its gene symbols (file row order) and sample metadata (column order)."""

    path: Path
    symbols: np.ndarray
    samples: pd.DataFrame

    @property
    def n_genes(self) -> int:
        return len(self.symbols)

    @property
    def n_samples(self) -> int:
        return len(self.samples)


def open_archs4(path: PathLike, sample_fields: Sequence[str] = REQUIRED_SAMPLE_FIELDS) -> Archs4File:
    """Check the layout of ``path`` and read its gene symbols and the requested sample fields.

    Raises an InputError naming the file and the missing or malformed key when the file is not
    ARCHS4-shaped (no ``data/expression``, not 2-D integers, metadata lengths that disagree).
    """
    path = Path(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise InputError(path, f"not an HDF5 file ({error})") from None
    with handle:
        if EXPRESSION not in handle or not isinstance(handle[EXPRESSION], h5py.Dataset):
            raise InputError(path, f"no dataset {EXPRESSION!r}; expected the ARCHS4 layout (genes x samples counts)")
        matrix = handle[EXPRESSION]
        if matrix.ndim != 2 or matrix.dtype.kind not in "iu":
            raise InputError(path, f"{EXPRESSION!r} must be a 2-D integer matrix, got {matrix.ndim}-D {matrix.dtype}")
        n_genes, n_samples = matrix.shape
        symbol_key = next((key for key in SYMBOL_FIELDS if key in handle), None)
        if symbol_key is None:
            raise InputError(path, f"no gene symbols; expected one of {list(SYMBOL_FIELDS)}")
        symbols = _decode(handle[symbol_key][()])
        if len(symbols) != n_genes:
            raise InputError(path, f"{symbol_key!r} has {len(symbols)} entries, {EXPRESSION!r} has {n_genes} gene rows")
        missing = [f for f in sample_fields if f"meta/samples/{f}" not in handle]
        if missing:
            raise InputError(path, f"missing sample metadata meta/samples/{missing[0]} (required: {list(sample_fields)})")
        columns = {}
        for field in sample_fields:
            values = _decode(handle[f"meta/samples/{field}"][()])
            if len(values) != n_samples:
                raise InputError(
                    path, f"meta/samples/{field} has {len(values)} entries, {EXPRESSION!r} has {n_samples} samples"
                )
            columns[field] = values
    samples = pd.DataFrame(columns)
    samples["singlecellprobability"] = samples["singlecellprobability"].astype(float)
    return Archs4File(path, symbols, samples)


def iter_sample_blocks(
    path: PathLike, columns: Sequence[int] | None = None, block: int = DEFAULT_BLOCK
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(column indices, counts genes x block as uint32)`` for the given sample columns.

    ``columns`` (default: all) are read in increasing order, ``block`` columns at a time; each
    read spans only that block's columns, so peak memory is genes x block.
    """
    with h5py.File(path, "r") as handle:
        matrix = handle[EXPRESSION]
        order = np.arange(matrix.shape[1]) if columns is None else np.unique(np.asarray(columns, dtype=np.int64))
        for start in range(0, len(order), block):
            index = order[start : start + block]
            lo, hi = int(index[0]), int(index[-1]) + 1
            # One contiguous slab read is far faster in HDF5 than point selection; it is
            # bounded by the block's span, and dense selections (the usual case) waste little.
            if hi - lo <= 2 * len(index):
                counts = matrix[:, lo:hi][:, index - lo]
            else:
                counts = matrix[:, index]
            yield index, counts.astype(np.uint32, copy=False)


def sample_qc(
    archs4: Archs4File,
    min_total_counts: float = 1e6,
    max_singlecell_probability: float = 0.5,
    min_nonzero_genes: int = 2000,
    block: int = DEFAULT_BLOCK,
) -> pd.DataFrame:
    """Per-sample QC table: ``total_counts``, ``nonzero_genes``, ``singlecellprobability``, ``keep``.

    A sample is kept when total counts >= ``min_total_counts``, single-cell probability <
    ``max_singlecell_probability`` and more than ``min_nonzero_genes`` genes are non-zero (the
    original's filter). Raises an InputError when no sample passes.
    """
    totals = np.zeros(archs4.n_samples, dtype=np.float64)
    nonzero = np.zeros(archs4.n_samples, dtype=np.int64)
    for index, counts in iter_sample_blocks(archs4.path, block=block):
        totals[index] = counts.sum(axis=0, dtype=np.float64)
        nonzero[index] = (counts > 0).sum(axis=0)
    table = archs4.samples.copy()
    table["total_counts"] = totals
    table["nonzero_genes"] = nonzero
    table["keep"] = (
        (totals >= min_total_counts)
        & (table["singlecellprobability"].to_numpy() < max_singlecell_probability)
        & (nonzero > min_nonzero_genes)
    )
    if not table["keep"].any():
        raise InputError(
            archs4.path,
            f"sample QC removed all {archs4.n_samples} samples (total counts >= {min_total_counts:g}, "
            f"singlecellprobability < {max_singlecell_probability}, > {min_nonzero_genes} non-zero genes; "
            f"largest total {totals.max():.0f}, most non-zero genes {nonzero.max()})",
        )
    return table


def read_vocabulary(path: PathLike) -> list[str]:
    """A gene vocabulary: a JSON ``{gene: index}`` map (the original's) or one symbol per line."""
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".json":
        mapping = json.loads(text)
        if not isinstance(mapping, dict):
            raise InputError(path, "expected a JSON object {gene symbol: index}")
        return [gene for gene, _ in sorted(mapping.items(), key=lambda item: item[1])]
    return [line.strip() for line in text.splitlines() if line.strip()]


def biotype_vocabulary(path: PathLike, biotypes: Sequence[str]) -> list[str]:
    """Symbols of the file's genes whose ``meta/genes/biotype`` is one of ``biotypes`` (e.g. the
    original's protein-coding + lncRNA vocabulary); an InputError naming the file and key if the
    field is missing or no gene matches."""
    with h5py.File(path, "r") as handle:
        if "meta/genes/biotype" not in handle:
            raise InputError(path, "no 'meta/genes/biotype' field (needed for gene_biotypes)")
        biotype = _decode(handle["meta/genes/biotype"][:])
        symbol_field = next((f for f in SYMBOL_FIELDS if f in handle), SYMBOL_FIELDS[0])
        symbols = _decode(handle[symbol_field][:])
    genes = [str(s) for s, b in zip(symbols, biotype) if b in set(biotypes)]
    if not genes:
        raise InputError(path, f"'meta/genes/biotype' has no gene of biotype {list(biotypes)}")
    return genes


@dataclass(frozen=True)
class GeneMap:
    """How file rows become model genes: ``genes`` (output order) and ``matrix`` (genes x file rows).

    ``matrix @ counts_block`` gives the model's counts: a row of ones over every file row of a
    symbol sums duplicates, a single one keeps one row.
    """

    genes: np.ndarray
    matrix: sp.csr_matrix

    def apply(self, counts: np.ndarray) -> np.ndarray:
        """Map a file block (file rows x samples) to model genes x samples."""
        return np.asarray(self.matrix @ counts, dtype=np.float64)


def gene_map(
    archs4: Archs4File,
    duplicates: str = "sum",
    vocabulary: Sequence[str] | None = None,
    vocabulary_source: str = "vocabulary",
    samples: Sequence[int] | None = None,
    block: int = DEFAULT_BLOCK,
) -> GeneMap:
    """The gene universe: unique non-empty symbols, restricted to ``vocabulary`` when given.

    ``duplicates="sum"`` adds the counts of rows sharing a symbol (ARCHS4's convention, corrected
    R2); ``"max_mean"`` keeps the row with the highest mean log expression over ``samples`` (the
    original), which needs one streamed pass. Genes keep the order of their first file row.
    Raises an InputError naming ``vocabulary_source`` when no gene of the file is in the vocabulary.
    """
    if duplicates not in ("sum", "max_mean"):
        raise InputError("generain.duplicates", f"expected 'sum' or 'max_mean', got {duplicates!r}")
    symbols = pd.Series(archs4.symbols.astype(str))
    keep = symbols.str.len() > 0
    if vocabulary is not None:
        known = set(vocabulary)
        keep &= symbols.isin(known)
        if not keep.any():
            raise InputError(
                vocabulary_source,
                f"none of the {len(symbols)} genes of {archs4.path} is in the vocabulary "
                f"({len(known)} genes, e.g. {sorted(known)[:3]}; file genes e.g. {list(symbols[:3])})",
            )
    rows = np.flatnonzero(keep.to_numpy())
    genes, codes = np.unique(symbols.to_numpy()[rows], return_inverse=True)
    first_row = np.full(len(genes), np.iinfo(np.int64).max)
    np.minimum.at(first_row, codes, rows)
    order = np.argsort(first_row)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    codes, genes = rank[codes], genes[order]
    if duplicates == "max_mean":
        means = _row_log_means(archs4, samples, block)[rows]
        # Among rows of a symbol, the highest mean wins (first row on ties): sort by (code, -mean, row).
        best = np.lexsort((rows, -means, codes))
        first_of_code = np.r_[True, codes[best][1:] != codes[best][:-1]]
        rows, codes = rows[best][first_of_code], codes[best][first_of_code]
    matrix = sp.csr_matrix((np.ones(len(rows)), (codes, rows)), shape=(len(genes), archs4.n_genes))
    return GeneMap(np.asarray(genes, dtype=object), matrix)


def _row_log_means(archs4: Archs4File, samples: Sequence[int] | None, block: int) -> np.ndarray:
    """Mean over ``samples`` of each file row's log10(scaled count + 1) (the original's gene statistic)."""
    total = np.zeros(archs4.n_genes)
    n = 0
    for _, counts in iter_sample_blocks(archs4.path, samples, block):
        total += scale_log(counts.astype(np.float64)).sum(axis=1)
        n += counts.shape[1]
    return total / max(n, 1)


def split_samples(
    series_id: Sequence[str],
    how: str = "series",
    fractions: tuple[float, float, float] = (0.9, 0.05, 0.05),
    seed: int = 0,
) -> np.ndarray:
    """Assign each sample to ``train``/``validation``/``test``.

    ``how="series"`` (corrected R3) assigns whole GEO series, so no series crosses splits; a sample
    listed under several series (``"GSE1,GSE2"``, super-series) joins them into one group.
    ``how="sample"`` (faithful) splits samples at random into train/validation only (no test set),
    with ``fractions[0]`` going to train. Deterministic given ``seed``.
    """
    n = len(series_id)
    rng = np.random.default_rng(seed)
    labels = np.array(["train", "validation", "test"], dtype=object)
    if how == "sample":
        assignment = np.full(n, "validation", dtype=object)
        assignment[rng.permutation(n)[: int(round(fractions[0] * n))]] = "train"
        return assignment
    if how != "series":
        raise InputError("generain.split", f"expected 'series' or 'sample', got {how!r}")
    groups = _series_groups(series_id)
    unique = np.unique(groups)
    order = rng.permutation(len(unique))
    # Greedy in random order: each group goes to the split furthest below its target size.
    target = np.asarray(fractions, dtype=float) / sum(fractions) * n
    filled = np.zeros(3)
    sizes = pd.Series(groups).value_counts()
    group_split = {}
    for g in unique[order]:
        choice = int(np.argmax(target - filled))
        group_split[g] = choice
        filled[choice] += sizes[g]
    return labels[[group_split[g] for g in groups]]


def _series_groups(series_id: Sequence[str]) -> np.ndarray:
    """Connected groups of series: samples that share any series id end up in one group."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    per_sample = [[s.strip() for s in str(v).split(",") if s.strip()] or [f"<none>{i}"] for i, v in enumerate(series_id)]
    for ids in per_sample:
        for other in ids[1:]:
            parent[find(other)] = find(ids[0])
    return np.array([find(ids[0]) for ids in per_sample], dtype=object)
