"""GENEX vs scVI training throughput, side by side in one process on the same cells.

Usage:
    python bench/bench_genex_vs_scvi.py [--prepared results/sim_pbmc/data/prepared.h5ad]
        [--data-dir ../shared/data/pbmc_3batch_savercat] [--epochs 50] [--threads 2]
        [--device auto|cpu|cuda] [--seed 0] [--out bench/results/genex_vs_scvi.tsv]

Data: a prepared.h5ad of the workflow (``--prepared``), or by default the real 3-batch PBMC subset in
../shared/data, read and prepared with the workflow's own functions and default settings (QC,
normalize_total + log1p, 2,000 seurat_v3 HVGs with the batch key).

Both models train for the same number of epochs = passes over all cells (GENEX corrected mode: one
balanced pass per epoch, METHODS G4; scVI: one pass per epoch), with the same torch threads and
device. scVI trains twice: with the baseline's mini-batch (1,200, docs/models/baselines.md, the GENEX paper's
setting) and with GENEX's own (128, also scvi-tools' default), since larger mini-batches alone
raise cells per second. Throughput = cells seen per second of training wall time = epochs x n_cells
/ seconds (model construction, data loading and inference are not timed). Prints every run and
the ratio GENEX / scVI for each scVI run (above 1 = GENEX trains faster) and writes one row per run
to ``--out``.

To say where the difference comes from, it also counts the matrix-multiply FLOPs of one training
epoch per cell (torch's FLOP formulas for matmuls; elementwise ops not counted): the count of a 2-epoch run
minus that of a 1-epoch run, so construction and scVI's inference cancel out.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

import anndata as ad
import pandas as pd
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from deepexpr.integration.baselines import integrate
from deepexpr.io import write_table
from deepexpr.models._base import resolve_device
from deepexpr.models.genex import GENEX
from deepexpr.models.genex.settings import MODE_DEFAULTS

REPO = Path(__file__).resolve().parents[1]
COLUMNS = [
    "device", "n_cells", "n_genes", "method", "batch_size", "epochs", "seconds", "cells_per_second", "mflop_per_cell"
]


def load_pbmc(data_dir: Path, seed: int) -> ad.AnnData:
    """The 3-batch PBMC subset read and prepared as ``snakemake pbmc --configfile config/offline.yaml`` does."""
    from deepexpr.data.singlecell.prepare import prepare_singlecell
    from deepexpr.data.singlecell.read import read_singlecell

    source = {"format": "10x_mtx", "path": str(data_dir), "cell_metadata": str(data_dir / "cell_metadata.tsv")}
    raw = read_singlecell([source], {"batch": "tech", "cell_type": "celltype"})
    return prepare_singlecell(raw, None, "pbmc", seed, str(data_dir))


def train_genex(prepared: ad.AnnData, epochs: int, device: str, seed: int) -> tuple[float, int]:
    """Train GENEX (corrected mode, defaults) for ``epochs`` balanced passes: (training seconds, mini-batch)."""
    GENEX.setup_anndata(prepared, batch_key="batch")
    model = GENEX(prepared, mode="corrected", seed=seed)
    started = time.perf_counter()
    model.train(max_epochs=epochs, device=device)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started, int(model.config["batch_size"])


def train_scvi(
    prepared: ad.AnnData, epochs: int, device: str, seed: int, threads: int, batch_size: int | None = None
) -> tuple[float, int]:
    """Train scVI with the baseline's settings (integrate_scvi), optionally another mini-batch size:
    (training seconds, mini-batch)."""
    params = {"max_epochs": epochs, "device": device, "threads": threads}
    if batch_size is not None:
        params["batch_size"] = batch_size
    result = integrate("scvi", prepared, seed=seed, params=params)
    info = result.uns["integration"]
    return float(info["seconds"]), int(info["params"]["batch_size"])


class MatmulFlops(TorchDispatchMode):
    """Sums torch's FLOP formulas over every op it has one for (matmuls, convolutions).

    torch's FlopCounterMode would do this too, but its per-module tracking breaks on
    autograd.grad, which GENEX's gradient penalty calls.
    """

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func._overloadpacket in flop_registry:
            self.total += flop_registry[func._overloadpacket](*args, **kwargs, out_val=out)
        return out


def flops_per_cell(train: Callable[[int], object], n_cells: int) -> float:
    """Matrix-multiply FLOPs of one training epoch per cell: 2-epoch count minus 1-epoch count."""
    totals = []
    for epochs in (1, 2):
        with MatmulFlops() as counter:
            train(epochs)
        totals.append(counter.total)
    return (totals[1] - totals[0]) / n_cells


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
    prepared = ad.read_h5ad(args.prepared) if args.prepared else load_pbmc(args.data_dir, args.seed)
    n_cells, n_genes = prepared.shape
    label = device.type if device.type == "cpu" else torch.cuda.get_device_name(device)
    print(f"{n_cells} cells x {n_genes} genes, {args.epochs} epochs, device {label}, {args.threads} threads")

    genex_batch = MODE_DEFAULTS["corrected"]["batch_size"]
    runs = [
        ("genex", lambda epochs: train_genex(prepared, epochs, device.type, args.seed)),
        ("scvi", lambda epochs: train_scvi(prepared, epochs, device.type, args.seed, args.threads)),
        ("scvi", lambda epochs: train_scvi(prepared, epochs, device.type, args.seed, args.threads, genex_batch)),
    ]
    timed = [train(args.epochs) for _, train in runs]
    rows = [
        {
            "device": label,
            "n_cells": n_cells,
            "n_genes": n_genes,
            "method": method,
            "batch_size": batch_size,
            "epochs": args.epochs,
            "seconds": round(seconds, 3),
            "cells_per_second": round(args.epochs * n_cells / seconds, 1),
            "mflop_per_cell": round(flops_per_cell(train, n_cells) / 1e6, 2),
        }
        for (method, train), (seconds, batch_size) in zip(runs, timed)
    ]
    table = pd.DataFrame(rows)[COLUMNS]
    print(table.to_string(index=False))
    genex = table.iloc[0]
    for _, scvi in table.iloc[1:].iterrows():
        print(
            f"scVI with mini-batches of {scvi['batch_size']}: throughput GENEX / scVI = "
            f"{genex['cells_per_second'] / scvi['cells_per_second']:.2f} (above 1: GENEX trains faster), "
            f"training FLOPs per cell GENEX / scVI = {genex['mflop_per_cell'] / scvi['mflop_per_cell']:.2f}"
        )
    write_table(table, args.out)


if __name__ == "__main__":
    main()
