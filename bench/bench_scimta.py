"""scIMTA scale bench: streamed (out-of-core) graph build and training at 100k to 1M cells, peak memory.

For every size the counts are simulated chunk by chunk (8 cell types with distinct gene
programmes, ~``COUNTS_PER_CELL`` Poisson counts per cell over 2,000 genes) and appended straight
to an .h5ad on disk (``layers/counts``, CSR) by a writer subprocess: the matrix is never whole in
memory. Then, in a fresh subprocess per size and path (peak RSS from getrusage is per process):

- ``streamed``: :class:`StreamedSCIMTA` builds its partition store from the file (PCA from the
  streamed Gram matrix, k-means partitions, IVF kNN; ``graph_build_s``) and trains one epoch of
  partition batches (``epoch_s``); after the peak RSS is read, the quality at that size: kNN
  recall and same-type share of the IVF neighbours (vs the exact ones), the time of ``predict``
  (``predict_s``), and the ARI with the simulated types of scIMTA's clusters and of k-means on
  the PCA scores (the peer);
- ``in_memory`` (the peer, ``--peer`` sizes only): the file is read into an AnnData and the
  in-memory :class:`SCIMTA` builds its graph and trains one epoch, as before.

``peak_vs_smallest`` = peak RSS / the peak RSS of the smallest size of the same path in the same
run (the target: <= 1.25 for the streamed path from 100k to 1M). Rows go to ``--out``
(bench/results/scimta_scale.tsv) as each one finishes; scratch files go under ``--scratch``
(default /tmp) and are deleted after each size.

    PYTHONPATH=src python bench/bench_scimta.py --peer 100000 300000 -- 100000 300000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_GENES = 2000
COUNTS_PER_CELL = 150
N_TYPES = 8
CHUNK = 5_000  # a dense chunk is CHUNK x 2,000 int64 (80 MB) in the writer process
QUALITY = ("predict_s", "knn_recall", "knn_same_type", "exact_same_type", "scimta_ari", "pca_kmeans_ari")
OUT = Path(__file__).resolve().parent / "results" / "scimta_scale.tsv"


def write_h5ad(path: Path, n_cells: int, seed: int = 0) -> None:
    """Simulated counts appended chunk by chunk to ``layers/counts`` of an .h5ad (X left empty)."""
    import anndata as ad
    import h5py
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    programmes = rng.gamma(0.5, 1.0, (N_TYPES, N_GENES))
    programmes /= programmes.sum(axis=1, keepdims=True)
    cell_type = rng.integers(0, N_TYPES, n_cells)
    skeleton = ad.AnnData(
        obs=pd.DataFrame({"cell_type": pd.Categorical(cell_type)}, index=[f"cell{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=[f"gene{j}" for j in range(N_GENES)]),
    )
    skeleton.write_h5ad(path)
    with h5py.File(path, "a") as handle:
        for start in range(0, n_cells, CHUNK):
            size = min(CHUNK, n_cells - start)
            counts = rng.poisson(programmes[cell_type[start : start + size]] * COUNTS_PER_CELL).astype(np.float32)
            counts[:, 0] += 1  # no empty cells
            block = sp.csr_matrix(counts)
            if start == 0:
                ad.io.write_elem(handle["layers"], "counts", block)
                stored = ad.io.sparse_dataset(handle["layers/counts"])
            else:
                stored.append(block)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_streamed(path: Path, store: Path) -> dict:
    import torch

    from deepexpr.models.scimta.streamed import StreamedSCIMTA

    started = time.perf_counter()
    model = StreamedSCIMTA.from_h5ad(path, store, seed=0, n_clusters=N_TYPES, gene_graph=False, pretrain_epochs=1, cluster_epochs=0)
    graph_s = time.perf_counter() - started
    print(f"  store built in {graph_s:.1f} s ({model.store.n_partitions} partitions), peak RSS {peak_mb():.0f} MB", file=sys.stderr, flush=True)
    model.module.train()
    optimizer = torch.optim.Adam(model.module.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    model._epoch(optimizer, "pretrain", None, generator)
    epoch_s = time.perf_counter() - started
    print(f"  epoch in {epoch_s:.1f} s, peak RSS {peak_mb():.0f} MB", file=sys.stderr, flush=True)
    peak = peak_mb()
    # Quality, measured after the peak was read: the checks hold N-sized label arrays by design.
    cell_type = read_cell_types(path)
    return {
        "graph_build_s": graph_s,
        "epoch_s": epoch_s,
        "n_partitions": model.store.n_partitions,
        "peak_rss_mb": peak,
        **knn_quality(model.store, cell_type),
        **clustering_quality(model, generator, cell_type),
    }


def read_cell_types(path: Path) -> np.ndarray:
    import anndata as ad
    import h5py

    with h5py.File(path, "r") as handle:
        return np.asarray(ad.io.read_elem(handle["obs/cell_type"]).codes)


def knn_quality(store, cell_type: np.ndarray, n_queries: int = 1000, seed: int = 0) -> dict:
    """For random query cells: ``knn_recall``, the share of the exact k nearest neighbours (PCA, all
    cells) that the store's IVF kNN found, and the share of neighbours of the query's simulated type,
    for the IVF (``knn_same_type``) and the exact (``exact_same_type``) neighbours. Exact neighbours
    come from a streamed top-k over the partitions (bounded memory)."""
    position_type = np.empty(store.n_cells, dtype=cell_type.dtype)  # types in the store's order
    for partition in range(store.n_partitions):
        position_type[store.offsets[partition] : store.offsets[partition + 1]] = cell_type[store.read(partition, ("cell",))["cell"]]
    queries = np.sort(np.random.default_rng(seed).choice(store.n_cells, n_queries, replace=False))
    owner = np.searchsorted(store.offsets, queries, side="right") - 1
    found, points = [], []
    for partition in np.unique(owner):
        part = store.read(partition, ("pca", "knn"))
        rows = queries[owner == partition] - store.offsets[partition]
        found.append(part["knn"][rows])
        points.append(part["pca"][rows])
    found, points = np.vstack(found), np.vstack(points).astype(np.float64)
    k = found.shape[1]
    best_distance = np.full((n_queries, k + 1), np.inf)
    best_index = np.zeros((n_queries, k + 1), dtype=np.int64)
    for partition in range(store.n_partitions):
        scores = store.read(partition, ("pca",))["pca"].astype(np.float64)
        distance = (points**2).sum(1)[:, None] - 2 * points @ scores.T + (scores**2).sum(1)[None, :]
        merged_distance = np.hstack([best_distance, distance])
        merged_index = np.hstack([best_index, np.arange(store.offsets[partition], store.offsets[partition + 1])[None, :].repeat(n_queries, 0)])
        keep = np.argsort(merged_distance, axis=1)[:, : k + 1]
        best_distance, best_index = np.take_along_axis(merged_distance, keep, 1), np.take_along_axis(merged_index, keep, 1)
    exact = np.vstack([row[row != query][:k] for row, query in zip(best_index, queries)])
    query_type = position_type[queries][:, None]
    return {
        "knn_recall": float(np.mean([len(set(e) & set(f)) / k for e, f in zip(exact, found)])),
        "knn_same_type": float((position_type[found] == query_type).mean()),
        "exact_same_type": float((position_type[exact] == query_type).mean()),
    }


def clustering_quality(model, generator, cell_type: np.ndarray) -> dict:
    """ARI with the simulated types (K = their number for both) of scIMTA's clusters after the one
    pretraining epoch (centres by k-means on z of the fixed-size sample, no DEC epoch:
    ``scimta_ari``; ``predict_s`` times the streamed inference pass) and, as the peer a user would
    pick at this size, of k-means fitted on the store's fixed-size PCA subsample and applied to every
    cell's PCA scores partition by partition (``pca_kmeans_ari``)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    model._cluster_phase([], generator, log_every=10, progress_bar=False)
    started = time.perf_counter()
    predicted = model.predict().to_numpy()
    predict_s = time.perf_counter() - started
    scimta = adjusted_rand_score(cell_type, predicted)
    store = model.store
    kmeans = KMeans(N_TYPES, n_init=10, random_state=0).fit(store.summary["sample_pca"])
    labels = np.empty(store.n_cells, dtype=np.int64)
    for partition in range(store.n_partitions):
        part = store.read(partition, ("pca", "cell"))
        labels[part["cell"]] = kmeans.predict(part["pca"])
    return {"predict_s": predict_s, "scimta_ari": float(scimta), "pca_kmeans_ari": float(adjusted_rand_score(cell_type, labels))}


def measure_in_memory(path: Path) -> dict:
    import anndata as ad
    import torch

    from deepexpr.models.scimta import SCIMTA

    adata = ad.read_h5ad(path)
    SCIMTA.setup_anndata(adata)
    started = time.perf_counter()
    model = SCIMTA(adata, seed=0, n_clusters=N_TYPES, gene_graph=False, pretrain_epochs=1, cluster_epochs=0)
    graph_s = time.perf_counter() - started
    print(f"  PCA + graph + PPMI in {graph_s:.1f} s, peak RSS {peak_mb():.0f} MB", file=sys.stderr, flush=True)
    model.module.train()
    model._prepare_device_data()
    optimizer = torch.optim.Adam(model.module.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    model._epoch(optimizer, "pretrain", None, generator)
    epoch_s = time.perf_counter() - started
    return {"graph_build_s": graph_s, "epoch_s": epoch_s, "n_partitions": np.nan, "peak_rss_mb": peak_mb()}


def one_run(path_kind: str, h5ad: Path, store: Path) -> dict:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    measured = measure_streamed(h5ad, store) if path_kind == "streamed" else measure_in_memory(h5ad)
    return {**measured, "threads": torch.get_num_threads()}


def run(*args: str) -> str:
    result = subprocess.run([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{args} failed (its stderr is above)")
    return result.stdout


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--write":
        write_h5ad(Path(argv[1]), int(argv[2]))
        return
    if argv and argv[0] == "--one":
        print(json.dumps(one_run(argv[1], Path(argv[2]), Path(argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", type=int, nargs="*", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--peer", type=int, nargs="*", default=[], help="sizes to run the in-memory SCIMTA at too")
    parser.add_argument("--scratch", default="/tmp")
    parser.add_argument("--out", type=Path, default=OUT, help="TSV the rows are written to")
    args = parser.parse_args(argv)
    smallest: dict[str, float] = {}
    for n_cells in sorted(args.sizes):
        scratch = Path(tempfile.mkdtemp(prefix=f"scimta_scale_{n_cells}_", dir=args.scratch))
        try:
            h5ad = scratch / "counts.h5ad"
            started = time.perf_counter()
            run("--write", str(h5ad), str(n_cells))
            write_s = time.perf_counter() - started
            print(f"{n_cells}: simulated and written in {write_s:.1f} s ({h5ad.stat().st_size / 2**20:.0f} MB)", file=sys.stderr, flush=True)
            for path_kind in ["streamed", *(["in_memory"] if n_cells in args.peer else [])]:
                measured = json.loads(run("--one", path_kind, str(h5ad), str(scratch / "store")).strip().splitlines()[-1])
                smallest.setdefault(path_kind, measured["peak_rss_mb"])
                row = {
                    "n_cells": n_cells,
                    "n_genes": N_GENES,
                    "path": path_kind,
                    "device": "cpu",
                    "threads": measured["threads"],
                    "write_s": round(write_s, 2),
                    "graph_build_s": round(measured["graph_build_s"], 2),
                    "epoch_s": round(measured["epoch_s"], 2),
                    "n_partitions": measured["n_partitions"],
                    **{key: round(measured[key], 3) if key in measured else None for key in QUALITY},
                    "peak_rss_mb": round(measured["peak_rss_mb"], 1),
                    "peak_vs_smallest": round(measured["peak_rss_mb"] / smallest[path_kind], 3),
                }
                print(row, flush=True)
                record(args.out, row, first=not args.out.exists() or (n_cells == min(args.sizes) and path_kind == "streamed"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def record(out: Path, row: dict, first: bool) -> None:
    """Append one row to the TSV (a new table at the run's first row), so a long run that is
    stopped keeps the sizes it finished and every row of the table comes from one run."""
    import pandas as pd

    table = pd.DataFrame([row])
    if not first:
        table = pd.concat([pd.read_csv(out, sep="\t"), table], ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, sep="\t", index=False)


if __name__ == "__main__":
    main(sys.argv[1:])
