"""siVAE vs a plain VAE of the same size, same data and same passes over the cells, in one process.

Usage:
    python bench/bench_sivae.py [--cells 2400] [--genes 1000] [--hidden 128 64] [--latent 8]
        [--epochs 20] [--repeats 3] [--threads 1] [--device cpu] [--json benchmarks/sivae_vs_vae.json]

Data: the single-cell simulator (sim_pbmc's design, planted modules), the ``--genes`` genes with the
highest mean count. siVAE trains its three stages for ``--epochs`` each (cell, feature, joint); the
plain VAE is siVAE's own cell VAE (``feature_epochs=0, joint_epochs=0``) trained for 2 x ``--epochs``,
the same number of passes over the cells. A second plain VAE trained 3 x ``--epochs`` is timed too
(as many epochs as siVAE's whole schedule, counting the cheap feature-stage passes over genes).
Runs alternate ``--repeats`` times; the ratios use the median training seconds of each, wall and CPU
(this process's CPU time, the steadier measure on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import anndata as ad
import numpy as np
import scipy.sparse as sp
import torch

from deepexpr.data.singlecell.simulate import simulate_singlecell
from deepexpr.io import write_json
from deepexpr.models.sivae import SIVAE


def bench_data(n_cells: int, n_genes: int) -> ad.AnnData:
    batch = n_cells // 3
    raw, _ = simulate_singlecell(
        {"n_genes": 2 * n_genes, "batch_cells": [batch, batch, n_cells - 2 * batch]},
        seed=0,
        modules={"n_modules": 4, "module_size": 25, "hubs_per_module": 2},
    )
    matrix = raw.layers["counts"] if "counts" in raw.layers else raw.X
    counts = np.asarray(matrix.toarray() if sp.issparse(matrix) else matrix)
    keep = np.sort(np.argsort(-counts.mean(axis=0))[:n_genes])
    adata = raw[:, keep].copy()
    adata.layers["counts"] = counts[:, keep]
    return adata


def train_seconds(adata, device: str, **settings) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one training. On a shared machine the CPU
    seconds are the steadier measure: they do not count the time other processes hold the cores."""
    model = SIVAE(adata, mode="corrected", seed=0, **settings)
    started = time.process_time()
    model.train(device=device, progress_bar=False, log_every=10_000)
    return model.training_info["train_seconds"], time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=2400)
    parser.add_argument("--genes", type=int, default=1000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    parser.add_argument("--latent", type=int, default=8)
    parser.add_argument("--feature-dim", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    adata = bench_data(args.cells, args.genes)
    SIVAE.setup_anndata(adata, layer="counts", label_key="cell_type")
    size = {"hidden": args.hidden, "latent_dim": args.latent, "feature_dim": args.feature_dim}
    e = args.epochs
    runs = {
        "sivae": {**size, "cell_epochs": e, "feature_epochs": e, "joint_epochs": e},
        "vae_same_cell_passes": {**size, "cell_epochs": 2 * e, "feature_epochs": 0, "joint_epochs": 0},
        "vae_same_epochs": {**size, "cell_epochs": 3 * e, "feature_epochs": 0, "joint_epochs": 0},
    }
    seconds = {name: [] for name in runs}
    cpu_seconds = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, settings in runs.items():
            wall, cpu = train_seconds(adata, args.device, **settings)
            seconds[name].append(wall)
            cpu_seconds[name].append(cpu)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu_seconds.items()}
    record = {
        "cells": adata.n_obs,
        "genes": adata.n_vars,
        **size,
        "epochs_per_stage": e,
        "seconds": seconds,
        "median_seconds": median,
        "ratio_sivae_over_vae_same_cell_passes": median["sivae"] / median["vae_same_cell_passes"],
        "ratio_sivae_over_vae_same_epochs": median["sivae"] / median["vae_same_epochs"],
        "cpu_seconds": cpu_seconds,
        "median_cpu_seconds": median_cpu,
        "cpu_ratio_sivae_over_vae_same_cell_passes": median_cpu["sivae"] / median_cpu["vae_same_cell_passes"],
        "cpu_ratio_sivae_over_vae_same_epochs": median_cpu["sivae"] / median_cpu["vae_same_epochs"],
        "threads": args.threads,
        "device": args.device,
        "load_average_1min": os.getloadavg()[0],
        "machine": platform.platform(),
    }
    for name, value in median.items():
        print(f"{name}: {value:.2f} s wall, {median_cpu[name]:.2f} s CPU (medians of {args.repeats})")
    for kind in ("", "cpu_"):
        print(f"siVAE / plain VAE, {kind or 'wall '}ratio: same passes over the cells "
              f"{record[kind + 'ratio_sivae_over_vae_same_cell_passes']:.2f}, "
              f"same epochs {record[kind + 'ratio_sivae_over_vae_same_epochs']:.2f}")
    if args.json:
        write_json(record, args.json)


if __name__ == "__main__":
    main()
