"""Partition store of the streamed scIMTA: cells of an .h5ad on disk, split into partitions of bounded size.

Built in two passes over row chunks of the counts (h5py reads of contiguous slices, never the whole
matrix and never a memory map), so the build's memory does not depend on the number of cells N:

1. library sizes and the Gram matrix of the log-normalised rows (genes x genes) -> PCA loadings;
   a fixed-size random subsample's rows are kept to fit the partition centroids (k-means);
2. PCA scores per chunk, nearest centroid per cell, rows bucketed by partition in a bounded buffer
   and appended to per-partition files. A centroid's partition that reaches ``partition_size``
   cells is closed and another one opened for it, so no partition exceeds ``partition_size``.

Then an IVF-style approximate kNN: each partition's cells get their exact neighbours
(scikit-learn) among the cells of the ``n_probe`` partitions whose centroids are nearest
(itself included). Neighbour ids are int32 positions in the partition-contiguous order.

The store is written to ``<store>.building`` and renamed when complete; a failed build leaves
nothing. A manifest records the source file (path, size, mtime), the layer and the build
settings: a store that does not match is rebuilt.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

from deepexpr.errors import InputError
from deepexpr.models.scimta.model import _gram, _log_normalised, pca_components

logger = logging.getLogger(__name__)

STORE_VERSION = 1
#: Cells read from the .h5ad at a time.
READ_CHUNK = 4096
#: Cells the partition centroids are fitted on (and the label-free K is chosen on): fixed, not ~N.
CENTROID_SAMPLE = 20_000
#: Cells buffered before the buffer is appended to the partition files (bounds pass 2's memory).
FLUSH_CELLS = 16_384
MANIFEST = "manifest.json"
SUMMARY = "summary.npz"


class CountsReader:
    """Row chunks of a CSR (or dense) count matrix in an .h5ad file, read by contiguous slices."""

    def __init__(self, path: str | os.PathLike, layer: str = "counts"):
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(self.path, "file not found")
        self.where = f"{self.path}: {'X' if layer == 'X' else f'layers[{layer!r}]'}"
        self.file = h5py.File(self.path, "r")
        key = "X" if layer == "X" else f"layers/{layer}"
        if key not in self.file:
            layers = list(self.file["layers"]) if "layers" in self.file else []
            self.file.close()
            raise InputError(self.where, f"layer not found; layers are {layers}")
        self.node = self.file[key]
        if isinstance(self.node, h5py.Group):
            encoding = self.node.attrs.get("encoding-type", "")
            if encoding != "csr_matrix":
                self.file.close()
                raise InputError(self.where, f"expected a CSR matrix (cells x genes), got encoding {encoding!r}")
            self.shape = tuple(int(s) for s in self.node.attrs["shape"])
        else:
            self.shape = tuple(int(s) for s in self.node.shape)
        self.n_cells, self.n_genes = self.shape
        self.genes = self._index("var")

    def _index(self, group: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        node = self.file[group]
        column = node[node.attrs["_index"]]
        values = column[start:stop]
        return np.asarray([v.decode() if isinstance(v, bytes) else str(v) for v in values])

    def chunk(self, start: int, stop: int) -> sp.csr_matrix:
        """Raw counts of cells [start, stop) as CSR float32, validated (InputError naming file and key)."""
        if isinstance(self.node, h5py.Group):
            pointers = self.node["indptr"][start : stop + 1]
            first, last = int(pointers[0]), int(pointers[-1])
            counts = sp.csr_matrix(
                (self.node["data"][first:last].astype(np.float32), self.node["indices"][first:last], pointers - first),
                shape=(stop - start, self.n_genes),
            )
        else:
            counts = sp.csr_matrix(self.node[start:stop].astype(np.float32))
        data = counts.data
        if not np.isfinite(data).all() or (data < 0).any() or (data != np.round(data)).any():
            raise InputError(self.where, f"expected raw non-negative integer counts (cells {start}-{stop - 1})")
        library = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
        empty = np.flatnonzero(library == 0)
        if empty.size:
            names = self._index("obs", start, stop)[empty[:5]]
            raise InputError(
                self.where,
                f"{empty.size} cells of rows {start}-{stop - 1} have zero counts over the {self.n_genes} genes "
                f"(e.g. {[str(n) for n in names]}); remove them (e.g. sc.pp.filter_cells(min_counts=1))",
            )
        return counts

    def chunks(self, size: int = READ_CHUNK):
        for start in range(0, self.n_cells, size):
            yield start, self.chunk(start, min(self.n_cells, start + size))

    def obs_names(self) -> np.ndarray:
        return self._index("obs")

    def close(self) -> None:
        self.file.close()


def source_fingerprint(path: str | os.PathLike, layer: str, settings: dict) -> dict:
    """What a store must match to be reused: the file (resolved path, size, mtime) and the build."""
    stat = Path(path).stat()
    return {
        "version": STORE_VERSION,
        "source": str(Path(path).resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "layer": layer,
        **{key: settings[key] for key in sorted(settings)},
    }


class PartitionStore:
    """A built store: partitions read one at a time (counts CSR, library, PCA, cell ids, kNN)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.manifest = json.loads((self.directory / MANIFEST).read_text())
        summary = np.load(self.directory / SUMMARY)
        self.summary = {key: summary[key] for key in summary.files}
        self.sizes = np.asarray(self.manifest["sizes"], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])
        self.probes = [np.asarray(p, dtype=np.int64) for p in self.manifest["probes"]]
        self.genes = np.asarray(self.manifest["genes"])

    @property
    def n_partitions(self) -> int:
        return len(self.sizes)

    @property
    def n_cells(self) -> int:
        return int(self.offsets[-1])

    def _file(self, partition: int) -> Path:
        return self.directory / "partitions" / f"p{partition:06d}.npz"

    def read(self, partition: int, fields) -> dict:
        """The named arrays of one partition (explicit reads of an .npz, no memory map); ``counts``
        is assembled as CSR from its data/indices/indptr."""
        stored = np.load(self._file(partition))
        out = {}
        for field in fields:
            if field == "counts":
                out[field] = sp.csr_matrix(
                    (stored["data"], stored["indices"], stored["indptr"]), shape=(self.sizes[partition], len(self.genes))
                )
            elif field == "knn":
                out[field] = np.load(self.directory / "partitions" / f"p{partition:06d}_knn.npy")
            else:
                out[field] = stored[field]
        return out


def open_or_build(path, store_dir, layer: str, n_pcs: int, k: int, partition_size: int, n_probe: int, seed: int) -> PartitionStore:
    """The store of ``path`` in ``store_dir``: reused when its manifest matches the file and the
    settings, else (re)built. A failed build leaves neither a partial store nor the old one's files mixed in."""
    settings = {"n_pcs": n_pcs, "k": k, "partition_size": partition_size, "n_probe": n_probe, "seed": seed}
    store_dir = Path(store_dir)
    reader = CountsReader(path, layer)
    try:
        fingerprint = source_fingerprint(path, layer, settings)
        manifest = store_dir / MANIFEST
        if manifest.is_file() and json.loads(manifest.read_text()).get("fingerprint") == fingerprint:
            logger.info("reusing the partition store %s", store_dir)
            return PartitionStore(store_dir)
        building = store_dir.with_name(store_dir.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        try:
            _build(reader, building, fingerprint, **settings)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    finally:
        reader.close()
    shutil.rmtree(store_dir, ignore_errors=True)
    building.rename(store_dir)
    return PartitionStore(store_dir)


def _build(reader: CountsReader, directory: Path, fingerprint: dict, n_pcs, k, partition_size, n_probe, seed) -> None:
    started = time.perf_counter()
    n_cells, n_genes = reader.shape
    if n_cells <= k:
        raise InputError(reader.where, f"{n_cells} cells but k = {k} neighbours requested; need more than k cells (lower k)")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n_cells, min(n_cells, CENTROID_SAMPLE), replace=False))

    # Pass 1: Gram matrix and means of the log-normalised rows, and the subsample's rows.
    gram, column_sum, sample_rows = np.zeros((n_genes, n_genes)), np.zeros(n_genes), []
    for start, counts in reader.chunks():
        log_norm = _log_normalised(counts, np.asarray(counts.sum(axis=1)).ravel().astype(np.float64))
        chunk_gram, chunk_mean = _gram(log_norm)
        gram += chunk_gram * counts.shape[0]
        column_sum += chunk_mean * counts.shape[0]
        picked = sample[(sample >= start) & (sample < start + counts.shape[0])] - start
        sample_rows.append(log_norm[picked])
    mean = column_sum / n_cells
    components, shift = pca_components(gram / n_cells, mean, n_pcs, n_cells)
    sample_pca = (sp.vstack(sample_rows) @ components - shift).astype(np.float32)
    del sample_rows

    from sklearn.cluster import KMeans

    n_centroids = min(math.ceil(n_cells / partition_size), len(sample))
    centroids = KMeans(n_centroids, n_init=1, max_iter=50, random_state=seed).fit(sample_pca).cluster_centers_
    logger.info("pass 1 done (%d cells, %d centroids) in %.1f s", n_cells, n_centroids, time.perf_counter() - started)

    # Pass 2: PCA scores, nearest centroid, rows bucketed into partitions of at most partition_size.
    raw = directory / "raw"
    raw.mkdir(parents=True)
    centroid_of: list[int] = []  # partition -> centroid
    open_partition = np.full(n_centroids, -1)
    filled: list[int] = []
    buffer: list[tuple] = []
    buffered = 0
    for start, counts in reader.chunks():
        library = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
        scores = (_log_normalised(counts, library) @ components - shift).astype(np.float32)
        nearest = _nearest(scores, centroids)
        destination = np.empty(len(nearest), dtype=np.int64)
        for centroid in np.unique(nearest):
            rows = np.flatnonzero(nearest == centroid)
            while rows.size:
                partition = open_partition[centroid]
                if partition < 0 or filled[partition] == partition_size:
                    partition = open_partition[centroid] = len(centroid_of)
                    centroid_of.append(int(centroid))
                    filled.append(0)
                take = rows[: partition_size - filled[partition]]
                rows = rows[take.size :]
                filled[partition] += take.size
                destination[take] = partition
        buffer.append((counts, library, scores, start + np.arange(len(nearest)), destination))
        buffered += len(nearest)
        if buffered >= FLUSH_CELLS:
            _flush(buffer, raw)
            buffered = 0
    _flush(buffer, raw)

    partitions = directory / "partitions"
    partitions.mkdir()
    for partition in range(len(centroid_of)):
        _consolidate(raw, partitions, partition)
    shutil.rmtree(raw)
    sizes = np.asarray(filled, dtype=np.int64)
    logger.info("pass 2 done (%d partitions) in %.1f s", len(sizes), time.perf_counter() - started)

    # IVF kNN: exact neighbours among the cells of the n_probe partitions with the nearest centroids.
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    partition_centroids = centroids[np.asarray(centroid_of)]
    probes = []
    for partition in range(len(sizes)):
        distance = ((partition_centroids - partition_centroids[partition]) ** 2).sum(axis=1)
        distance[partition] = -1.0  # itself first, before overflow siblings at distance 0
        order = np.argsort(distance, kind="stable")
        # enough partitions for n_probe and for k + 1 candidates
        enough = max(n_probe, int(np.searchsorted(np.cumsum(sizes[order]), k + 1) + 1))
        chosen = order[:enough]
        probes.append(chosen.tolist())
        _write_knn(partitions, partition, chosen, offsets, k)
    np.savez(
        directory / SUMMARY,
        components=components.astype(np.float32),
        shift=shift.astype(np.float32),
        centroids=partition_centroids.astype(np.float32),
        gram=gram / n_cells,
        mean=mean,
        sample_pca=sample_pca,
    )
    manifest = {
        "fingerprint": fingerprint,
        "n_cells": int(n_cells),
        "genes": [str(g) for g in reader.genes],
        "sizes": sizes.tolist(),
        "probes": probes,
        "build_seconds": time.perf_counter() - started,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest))


def _nearest(points: np.ndarray, centres: np.ndarray, block: int = 256) -> np.ndarray:
    """Index of the nearest centre of every point, ``block`` points at a time (the number of
    centres grows with N, so a whole chunk x centres distance matrix would too)."""
    squared = (centres**2).sum(axis=1)
    return np.concatenate(
        [(squared[None, :] - 2.0 * points[s : s + block] @ centres.T).argmin(axis=1) for s in range(0, len(points), block)]
    )


FIELDS = ("data", "indices", "row_nnz", "library", "pca", "cell")


def _flush(buffer: list, raw: Path) -> None:
    """Append the buffered chunks' rows to their partitions' raw files, grouped by one stable sort
    (a bucketed write: memory ~ FLUSH_CELLS and a fixed number of objects, whatever the number of partitions)."""
    if not buffer:
        return
    destination = np.concatenate([b[4] for b in buffer])
    order = np.argsort(destination, kind="stable")
    destination = destination[order]
    counts = sp.vstack([b[0] for b in buffer]).tocsr()[order]
    data, indices = counts.data.astype(np.float32), counts.indices.astype(np.int32)
    arrays = {
        "row_nnz": np.diff(counts.indptr).astype(np.int32),
        "library": np.concatenate([b[1] for b in buffer])[order],
        "pca": np.concatenate([b[2] for b in buffer])[order].astype(np.float32),
        "cell": np.concatenate([b[3] for b in buffer])[order].astype(np.int64),
    }
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(destination)) + 1, [len(destination)]])
    for first, last in zip(bounds[:-1], bounds[1:]):
        stem = raw / f"p{destination[first]:06d}"
        pieces = {"data": data[counts.indptr[first] : counts.indptr[last]], "indices": indices[counts.indptr[first] : counts.indptr[last]]}
        pieces.update({field: values[first:last] for field, values in arrays.items()})
        for field in FIELDS:
            with open(f"{stem}.{field}", "ab") as handle:
                pieces[field].tofile(handle)
    buffer.clear()


def _consolidate(raw: Path, partitions: Path, partition: int) -> None:
    dtypes = {"data": np.float32, "indices": np.int32, "row_nnz": np.int32, "library": np.float64, "pca": np.float32, "cell": np.int64}
    arrays = {field: np.fromfile(raw / f"p{partition:06d}.{field}", dtype=dtypes[field]) for field in FIELDS}
    indptr = np.concatenate([[0], np.cumsum(arrays.pop("row_nnz"), dtype=np.int64)])
    arrays["pca"] = arrays["pca"].reshape(len(arrays["library"]), -1)
    np.savez(partitions / f"p{partition:06d}.npz", indptr=indptr, **arrays)


def _write_knn(partitions: Path, partition: int, probes: np.ndarray, offsets: np.ndarray, k: int) -> None:
    from sklearn.neighbors import NearestNeighbors

    scores = [np.load(partitions / f"p{p:06d}.npz")["pca"] for p in probes]
    positions = np.concatenate([np.arange(offsets[p], offsets[p + 1]) for p in probes])
    own = positions[: len(scores[0])]
    _, found = NearestNeighbors(n_neighbors=k + 1).fit(np.vstack(scores)).kneighbors(scores[0])
    found = positions[found]
    # drop the cell itself (or the farthest neighbour where duplicates hid it)
    is_self = found == own[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    neighbours = found[~is_self].reshape(len(own), k).astype(np.int32)
    np.save(partitions / f"p{partition:06d}_knn.npy", neighbours)
