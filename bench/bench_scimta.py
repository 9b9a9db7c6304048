"""scIMTA scale bench: graph construction and time per epoch at growing cell numbers, peak memory.

Each size runs in its own subprocess (peak RSS from getrusage is per process). Counts are
generated chunk by chunk straight into CSR (never a dense cells x genes matrix): a few cell types
with distinct gene programmes, ~``COUNTS_PER_CELL`` Poisson counts per cell over 2,000 genes.
Writes bench/results/scimta_scale.tsv (one row per size and device, added as each size finishes).

    PYTHONPATH=src python bench/bench_scimta.py 100000 300000 1000000

Peak RSS includes the data itself (CSR counts + log-normalised copy + PCA), which grows with N by
construction; ``data_mb`` is reported beside it so the working memory (peak - data) can be read.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

N_GENES = 2000
COUNTS_PER_CELL = 150
CHUNK = 5_000  # a dense chunk is CHUNK x 2,000 int64 (80 MB); larger chunks would dominate the peak RSS
OUT = Path(__file__).resolve().parent / "results" / "scimta_scale.tsv"


def simulate(n_cells: int, seed: int = 0):
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    programmes = rng.gamma(0.5, 1.0, (8, N_GENES))
    programmes /= programmes.sum(axis=1, keepdims=True)
    blocks = []
    for start in range(0, n_cells, CHUNK):
        size = min(CHUNK, n_cells - start)
        types = rng.integers(0, 8, size)
        counts = rng.poisson(programmes[types] * COUNTS_PER_CELL).astype(np.float32)
        counts[:, 0] += 1  # no empty cells
        blocks.append(sp.csr_matrix(counts))
    matrix = sp.vstack(blocks).tocsr()
    adata = ad.AnnData(X=matrix)
    adata.layers["counts"] = matrix
    return adata


def one_size(n_cells: int, device: str) -> dict:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from deepexpr.models.scimta import SCIMTA

    started = time.perf_counter()
    adata = simulate(n_cells)
    simulate_s = time.perf_counter() - started
    print(f"{n_cells}: simulated in {simulate_s:.1f} s", file=sys.stderr, flush=True)
    data_mb = adata.layers["counts"].data.nbytes * 2 * 2 / 2**20  # counts + log copy, data + indices
    SCIMTA.setup_anndata(adata)
    started = time.perf_counter()
    model = SCIMTA(adata, seed=0, n_clusters=8, gene_graph=False, pretrain_epochs=1, cluster_epochs=0)
    graph_s = time.perf_counter() - started
    print(f"{n_cells}: PCA + graph + PPMI in {graph_s:.1f} s", file=sys.stderr, flush=True)
    model.device = torch.device(device)
    model.module.to(model.device).train()
    model._prepare_device_data()
    optimizer = torch.optim.Adam(model.module.parameters(), lr=1e-3)
    generator = torch.Generator(device=model.device).manual_seed(0)
    started = time.perf_counter()
    model._epoch(optimizer, "pretrain", None, generator)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    epoch_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n_cells": n_cells,
        "n_genes": N_GENES,
        "device": device if device == "cpu" else torch.cuda.get_device_name(0),
        "threads": torch.get_num_threads(),
        "simulate_s": round(simulate_s, 2),
        "graph_build_s": round(graph_s, 2),
        "epoch_s": round(epoch_s, 2),
        "peak_rss_mb": round(peak_mb, 1),
        "data_mb": round(data_mb, 1),
        "working_mb": round(peak_mb - data_mb, 1),
    }


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--one":
        print(json.dumps(one_size(int(argv[1]), argv[2])))
        return
    import torch

    sizes = [int(a) for a in argv] or [100_000, 300_000, 1_000_000]
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    for device in devices:
        for n in sizes:
            result = subprocess.run([sys.executable, __file__, "--one", str(n), device], stdout=subprocess.PIPE, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"size {n} on {device} failed (its stderr is above)")
            row = json.loads(result.stdout.strip().splitlines()[-1])
            print(row, flush=True)
            record(row)


def record(row: dict) -> None:
    """Add one size's row to the TSV (replacing an earlier row of the same size and device), so a
    long run that is stopped keeps the sizes it finished."""
    import pandas as pd

    table = pd.DataFrame([row])
    if OUT.exists():
        previous = pd.read_csv(OUT, sep="\t")
        same = (previous["n_cells"] == row["n_cells"]) & (previous["device"] == row["device"])
        table = pd.concat([previous[~same], table], ignore_index=True).sort_values(["device", "n_cells"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT, sep="\t", index=False)


if __name__ == "__main__":
    main(sys.argv[1:])
