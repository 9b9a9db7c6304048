"""Mini-batches for the models: from an AnnData in memory or streamed from a csr .h5ad on disk.

Streaming (pass the path of an ``.h5ad`` instead of an AnnData) keeps only what sampling needs in
memory: the ``X/indptr`` row offsets, the integer codes of the obs columns the model uses and the
sampling weights. Each mini-batch reads its rows' slices of ``X/data`` and ``X/indices`` with
h5py (sorted rows, one read per contiguous run), so peak memory depends on the mini-batch size
and the number of genes, not on the number of cells. Write such a file with
:func:`write_backed_csr` (chunk by chunk) or ``anndata.AnnData.write_h5ad`` with a csr ``X``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepexpr.errors import InputError

# Entries of X/data checked for NaN/inf per read when validating a file on disk.
SCAN_ENTRIES = 1 << 22
# HDF5 chunk (entries) of the files we write: a mini-batch reads one or two chunks per cell, so
# small chunks keep random row access cheap (64K-entry chunks made each row read 256 KB).
WRITE_CHUNK = 1 << 12


class MatrixSource:
    """Rows of a cells x genes matrix as dense float32: ``X`` or a layer in memory, or a csr h5ad path."""

    def __init__(self, adata: ad.AnnData | str | os.PathLike, layer: str = ""):
        self.in_memory = isinstance(adata, ad.AnnData)
        if self.in_memory:
            self.name = "AnnData" if not layer else f"AnnData layers[{layer!r}]"
            if layer and layer not in adata.layers:
                raise InputError("AnnData", f"layers has no {layer!r} (layers: {', '.join(adata.layers) or 'none'})")
            matrix = adata.layers[layer] if layer else adata.X
            if matrix is None:
                raise InputError(self.name, "X is empty; expected log-normalised expression")
            self._matrix = (
                sp.csr_matrix(matrix, dtype=np.float32) if sp.issparse(matrix) else np.asarray(matrix, dtype=np.float32)
            )
            self._obs = adata.obs
            self.var_names = pd.Index(adata.var_names.astype(str))
            self.n_cells = adata.n_obs
        else:
            self.name = str(adata)
            if layer:
                raise InputError(self.name, f"streaming reads X only, not layers[{layer!r}]; store the values to stream in X")
            self._path = str(adata)
            self._handle = None
            try:
                handle = h5py.File(self._path, "r")
            except OSError as error:
                raise InputError(self.name, f"not a readable HDF5/.h5ad file ({error})") from None
            with handle:
                group = handle.get("X")
                if not isinstance(group, h5py.Group) or group.attrs.get("encoding-type") != "csr_matrix":
                    raise InputError(self.name, "streaming needs X stored as a csr matrix (X/data, X/indices, X/indptr)")
                self._indptr = group["indptr"][:].astype(np.int64)
                self.n_cells = int(group.attrs["shape"][0])
                self.var_names = pd.Index(ad.io.read_elem(handle["var"]).index.astype(str))
                self._obs_columns = list(handle["obs"].attrs.get("column-order", []))
        self.n_genes = len(self.var_names)

    # ----------------------------------------------------------------- obs
    @property
    def obs_columns(self) -> list[str]:
        return list(map(str, self._obs.columns)) if self.in_memory else list(self._obs_columns)

    def column(self, key: str) -> tuple[np.ndarray, list[str]]:
        """(integer codes, level names) of an obs column; levels sorted as strings.

        On disk a categorical column is read as its codes only, so a million cells cost a few MB.
        """
        if key not in self.obs_columns:
            raise InputError(self.name, f"obs has no column {key!r} (columns: {', '.join(self.obs_columns)})")
        if self.in_memory:
            values = self._obs[key]
            if isinstance(values.dtype, pd.CategoricalDtype):
                codes, categories = values.cat.codes.to_numpy(), [str(c) for c in values.cat.categories]
            else:
                categories, codes = None, None
                values = values.astype(str).to_numpy()
        else:
            with h5py.File(self._path, "r") as handle:
                element = handle["obs"][key]
                if isinstance(element, h5py.Group) and "codes" in element:
                    codes = element["codes"][:]
                    categories = [str(c) for c in ad.io.read_elem(element["categories"])]
                else:
                    categories, codes = None, None
                    values = np.asarray(ad.io.read_elem(element)).astype(str)
        if codes is None:
            levels, codes = np.unique(values, return_inverse=True)
            return _small_int(codes), [str(v) for v in levels]
        if (codes < 0).any():
            raise InputError(self.name, f"obs[{key!r}] has missing values; every cell needs a level")
        # Levels sorted as strings (and unused ones dropped) so in-memory and on-disk agree.
        used = np.unique(codes)
        levels = sorted(categories[c] for c in used)
        remap = np.full(len(categories), -1, dtype=np.int64)
        remap[used] = [levels.index(categories[c]) for c in used]
        return _small_int(remap[codes]), levels

    def cell_names(self, rows: np.ndarray) -> np.ndarray:
        """obs_names of the given rows (read from disk for those rows only when streaming)."""
        rows = np.asarray(rows)
        if self.in_memory:
            return np.asarray(self._obs.index.astype(str), dtype=object)[rows]
        with h5py.File(self._path, "r") as handle:
            index = handle["obs"][handle["obs"].attrs["_index"]]
            order = np.argsort(rows)
            names = np.empty(len(rows), dtype=object)
            names[order] = [n.decode() if isinstance(n, bytes) else str(n) for n in index[np.sort(rows)]]
            return names

    # ---------------------------------------------------------------- rows
    def _file(self) -> h5py.File:
        if self._handle is None:
            self._handle = h5py.File(self._path, "r")
        return self._handle

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """Dense float32 values of the given rows (sorted ascending for contiguous reads on disk)."""
        rows = np.asarray(rows)
        if self.in_memory:
            block = self._matrix[rows]
            return block.toarray() if sp.issparse(block) else np.ascontiguousarray(block)
        handle = self._file()
        data, indices = handle["X/data"], handle["X/indices"]
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        # One read of X/data and X/indices per contiguous run of (sorted) rows.
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        values, columns, lengths = [], [], []
        for run in np.split(ordered, breaks):
            start, stop = self._indptr[run[0]], self._indptr[run[-1] + 1]
            values.append(data[start:stop])
            columns.append(indices[start:stop])
            lengths.append(np.diff(self._indptr[run[0] : run[-1] + 2]))
        indptr = np.concatenate([[0], np.cumsum(np.concatenate(lengths))])
        block = sp.csr_matrix(
            (np.concatenate(values), np.concatenate(columns), indptr), shape=(len(rows), self.n_genes)
        ).toarray()
        out = np.empty_like(block)
        out[order] = block
        return out

    def count_nonfinite(self) -> int:
        """Number of NaN/inf values (read in slices on disk)."""
        if self.in_memory:
            values = self._matrix.data if sp.issparse(self._matrix) else self._matrix
            return int((~np.isfinite(values)).sum())
        with h5py.File(self._path, "r") as handle:
            data = handle["X/data"]
            return sum(
                int((~np.isfinite(data[s : s + SCAN_ENTRIES])).sum()) for s in range(0, data.shape[0], SCAN_ENTRIES)
            )

    def close(self) -> None:
        if not self.in_memory and self._handle is not None:
            self._handle.close()
            self._handle = None

    def __getstate__(self):  # h5py handles cannot be pickled or deep-copied
        state = dict(self.__dict__)
        state["_handle"] = None
        return state


def _small_int(codes: np.ndarray) -> np.ndarray:
    """Codes in the smallest integer type that holds them (int8/int16 for batch-like columns)."""
    top = int(codes.max()) if len(codes) else 0
    dtype = np.int8 if top < 2**7 else np.int16 if top < 2**15 else np.int32
    return codes.astype(dtype)


class BalancedSampler:
    """Draws cell indices with probability proportional to 1 / (size of the cell's batch).

    Every batch is then seen equally often per epoch whatever its size; the generator state can be
    saved and restored so a resumed training run draws what an uninterrupted one would have.
    """

    def __init__(self, batch_codes: np.ndarray, seed: int):
        codes = np.asarray(batch_codes, dtype=np.int64)
        sizes = np.bincount(codes)
        weights = 1.0 / sizes[codes]
        self.cumulative = np.cumsum(weights / weights.sum())
        self.rng = np.random.default_rng(seed)

    def draw(self, n: int) -> np.ndarray:
        positions = np.searchsorted(self.cumulative, self.rng.random(n), side="right")
        return np.minimum(positions, len(self.cumulative) - 1)

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state


def write_backed_csr(path: str | os.PathLike, blocks: Iterable, obs: pd.DataFrame, var: pd.DataFrame) -> None:
    """Write a csr .h5ad from an iterable of row blocks without holding the matrix in memory.

    ``blocks`` yields csr (or dense) blocks of consecutive cells whose rows add up to ``len(obs)``;
    the file is readable by ``anndata.read_h5ad`` (also ``backed="r"``) and by :class:`MatrixSource`.
    """
    from deepexpr.io import atomic_path

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            ad.io.write_elem(handle, "obs", obs)
            ad.io.write_elem(handle, "var", var)
            group = handle.create_group("X")
            group.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0", "shape": (len(obs), len(var))})
            data = group.create_dataset("data", shape=(0,), maxshape=(None,), dtype=np.float32, chunks=(WRITE_CHUNK,))
            indices = group.create_dataset("indices", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(WRITE_CHUNK,))
            indptr = group.create_dataset("indptr", shape=(1,), maxshape=(None,), dtype=np.int64, chunks=(WRITE_CHUNK,))
            indptr[0] = 0
            n_rows = 0
            for block in blocks:
                block = sp.csr_matrix(block, dtype=np.float32)
                n = data.shape[0]
                data.resize((n + block.nnz,))
                indices.resize((n + block.nnz,))
                data[n:] = block.data
                indices[n:] = block.indices
                indptr.resize((n_rows + block.shape[0] + 1,))
                indptr[n_rows + 1 :] = block.indptr[1:] + n
                n_rows += block.shape[0]
            if n_rows != len(obs):
                raise InputError(str(path), f"blocks hold {n_rows} rows but obs has {len(obs)} cells")
            for key in ("layers", "obsm", "varm", "obsp", "varp", "uns"):
                ad.io.write_elem(handle, key, {})
            handle.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
