"""GENEX vs scVI training throughput, side by side in one process on the same cells.

Usage:
    python bench/bench_genex_vs_scvi.py [--prepared results/sim_pbmc/data/prepared.h5ad]
        [--data-dir ../shared/data/pbmc_3batch_savercat] [--epochs 50] [--threads 2]
        [--device auto|cpu|cuda] [--seed 0] [--out bench/results/genex_vs_scvi.tsv]

Data: a prepared.h5ad of the workflow (``--prepared``), or by default the real 3-batch PBMC subset in
../shared/data, prepared as the workflow does (filter_cells min_genes 200, filter_genes min_cells 3,
HVG seurat_v3 on counts with batch_key = tech, 2,000 genes, normalize_total 1e4 + log1p).

Both models train for the same number of epochs = passes over all cells (GENEX corrected mode: one
balanced pass per epoch, METHODS G4; scVI: one pass per epoch), with the same torch threads and
device. Throughput = cells seen per second of training wall time = epochs x n_cells / seconds
(model construction, data loading and inference are not timed). Prints both and the ratio
GENEX / scVI (above 1 = GENEX trains faster) and writes one row per method to ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from deepexpr.integrate import integrate
from deepexpr.io import write_table
from deepexpr.train import resolve_device

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["device", "n_cells", "n_genes", "method", "epochs", "seconds", "cells_per_second"]


def load_pbmc(data_dir: Path, n_hvg: int = 2000) -> ad.AnnData:
    """The SAVERCAT 3-batch PBMC subset (genes x cells MatrixMarket) as a prepared AnnData."""
    import scanpy as sc
    from scipy.io import mmread

    counts = sp.csr_matrix(mmread(data_dir / "matrix.mtx.gz").T, dtype=np.float32)
    genes = pd.read_csv(data_dir / "features.tsv.gz", header=None)[0].astype(str).to_numpy()
    cells = pd.read_csv(data_dir / "barcodes.tsv.gz", header=None)[0].astype(str).to_numpy()
    meta = pd.read_csv(data_dir / "cell_metadata.tsv", sep="\t", index_col=0).loc[cells]
    obs = pd.DataFrame({"batch": meta["tech"].astype(str), "cell_type": meta["celltype"].astype(str)}, index=cells)
    adata = ad.AnnData(counts, obs=obs, var=pd.DataFrame(index=genes))
    adata.var_names_make_unique()
    sc.pp.filter_cells(adata, min_genes=200)
    sc.pp.filter_genes(adata, min_cells=3)
    adata.layers["counts"] = adata.X.copy()
    adata.obs["n_counts"] = np.asarray(adata.X.sum(axis=1)).ravel()
    sc.pp.highly_variable_genes(adata, flavor="seurat_v3", n_top_genes=n_hvg, batch_key="batch", layer="counts")
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata = adata[:, adata.var["highly_variable"]].copy()
    adata.X = sp.csr_matrix(adata.X, dtype=np.float32)
    return adata


def train_genex(prepared: ad.AnnData, epochs: int, device: str, seed: int) -> float:
    """Train GENEX (corrected mode, defaults) for ``epochs`` balanced passes; training seconds only."""
    from deepexpr.models.genex import GENEX

    GENEX.setup_anndata(prepared, batch_key="batch")
    model = GENEX(prepared, mode="corrected", seed=seed)
    started = time.perf_counter()
    model.train(max_epochs=epochs, device=device)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def train_scvi(prepared: ad.AnnData, epochs: int, device: str, seed: int, threads: int) -> float:
    """Train scVI with the baseline's settings (integrate_scvi) for ``epochs``; training seconds only."""
    result = integrate("scvi", prepared, seed=seed, params={"max_epochs": epochs, "device": device, "threads": threads})
    return float(result.uns["integration"]["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path, help="a prepared.h5ad (default: the real PBMC subset)")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "pbmc_3batch_savercat")
    parser.add_argument("--epochs", type=int, default=50, help="passes over all cells, the same for both models")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads for both models")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "genex_vs_scvi.tsv")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    prepared = ad.read_h5ad(args.prepared) if args.prepared else load_pbmc(args.data_dir)
    n_cells, n_genes = prepared.shape
    label = device.type if device.type == "cpu" else torch.cuda.get_device_name(device)
    print(f"{n_cells} cells x {n_genes} genes, {args.epochs} epochs, device {label}, {args.threads} threads")

    seconds = {
        "genex": train_genex(prepared, args.epochs, device.type, args.seed),
        "scvi": train_scvi(prepared, args.epochs, device.type, args.seed, args.threads),
    }
    table = pd.DataFrame(
        [
            {
                "device": label,
                "n_cells": n_cells,
                "n_genes": n_genes,
                "method": method,
                "epochs": args.epochs,
                "seconds": round(value, 3),
                "cells_per_second": round(args.epochs * n_cells / value, 1),
            }
            for method, value in seconds.items()
        ]
    )[COLUMNS]
    print(table.to_string(index=False))
    ratio = table.loc[0, "cells_per_second"] / table.loc[1, "cells_per_second"]
    print(f"throughput GENEX / scVI = {ratio:.2f} (above 1: GENEX trains faster)")
    write_table(table, args.out)


if __name__ == "__main__":
    main()
