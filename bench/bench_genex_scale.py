"""GENEX training streamed from disk: time per epoch and peak memory for growing numbers of cells.

Usage:
    python bench/bench_genex_scale.py [--cells 100000 300000 1000000] [--genes 2000] [--batches 3]
        [--epochs 1] [--max-minibatches N] [--threads 2] [--device auto|cpu|cuda]
        [--workdir /tmp/genex_scale] [--keep] [--out bench/results/genex_scale.tsv]

For every N it first writes a simulated, log-normalised csr ``.h5ad`` of N cells x ``--genes`` genes
chunk by chunk (never the whole matrix in memory; seeded Poisson counts from gamma gene means,
cell-type and batch factors and log-normal library sizes, then normalize_total 1e4 + log1p), then,
in a fresh Python process (so its peak RSS is its own), registers the file with
``GENEX.setup_anndata(path)`` and trains corrected-mode GENEX with ``GENEX(path)``: mini-batches are
read from disk (:mod:`deepexpr.data.stream`), only row offsets, obs codes and sampling weights of
the N cells are held in memory.

Columns of the table: ``n_cells, n_genes, file_gb, device, threads, minibatches, seconds_timed,
seconds_per_epoch, extrapolated, peak_rss_mb, rss_after_setup_mb, rss_after_import_mb``.
``seconds_per_epoch`` is measured over ``--epochs`` full epochs (one balanced pass over all N
cells) unless ``--max-minibatches`` is given: training then stops after that many mini-batches and
the epoch time is extrapolated (n_minibatches_per_epoch x time per mini-batch; ``extrapolated`` =
True). ``peak_rss_mb`` is the training process's peak resident memory (Linux VmHWM); the peaks after the
imports and after setup are printed beside it, so growth with N is visible directly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
COLUMNS = [
    "n_cells",
    "n_genes",
    "file_gb",
    "device",
    "threads",
    "minibatches",
    "seconds_timed",
    "seconds_per_epoch",
    "extrapolated",
    "peak_rss_mb",
    "rss_after_setup_mb",
    "rss_after_import_mb",
]
CHUNK_CELLS = 10_000


N_TYPES = 6


def cell_design(n_cells: int, n_batches: int, seed: int) -> pd.DataFrame:
    """Batch (unequal sizes, as in real data) and cell type of every cell, as small categoricals."""
    rng = np.random.default_rng([seed, 1])
    batch_prob = np.arange(1, n_batches + 1, dtype=float)
    batch = rng.choice(n_batches, size=n_cells, p=batch_prob / batch_prob.sum()).astype(np.int8)
    cell_type = rng.integers(0, N_TYPES, size=n_cells).astype(np.int8)
    return pd.DataFrame(
        {
            "batch": pd.Categorical.from_codes(batch, [f"batch{i + 1}" for i in range(n_batches)]),
            "cell_type": pd.Categorical.from_codes(cell_type, [f"type{i + 1}" for i in range(N_TYPES)]),
        },
        index=pd.RangeIndex(n_cells).astype(str),
    )


def simulated_blocks(obs: pd.DataFrame, n_genes: int, seed: int):
    """Yield csr blocks of log-normalised values (normalize_total 1e4 + log1p), chunk by chunk."""
    rng = np.random.default_rng([seed, 2])
    n_batches = len(obs["batch"].cat.categories)
    gene_mean = rng.gamma(0.6, 1 / 0.3, size=n_genes)
    type_factor = np.exp(rng.normal(0, 0.5, size=(N_TYPES, n_genes)) * (rng.random((N_TYPES, n_genes)) < 0.1))
    batch_factor = np.exp(rng.normal(0, 0.3, size=(n_batches, n_genes)) * (rng.random((n_batches, n_genes)) < 0.3))
    batch_codes, type_codes = obs["batch"].cat.codes.to_numpy(), obs["cell_type"].cat.codes.to_numpy()
    for start in range(0, len(obs), CHUNK_CELLS):
        batch, cell_type = batch_codes[start : start + CHUNK_CELLS], type_codes[start : start + CHUNK_CELLS]
        means = gene_mean[None, :] * type_factor[cell_type] * batch_factor[batch]
        library = rng.lognormal(6.8, 0.4, size=len(batch))  # ~900 UMIs: 10x-like sparsity
        means *= (library / means.sum(axis=1))[:, None]
        counts = rng.poisson(means).astype(np.float32)
        totals = np.maximum(counts.sum(axis=1, keepdims=True), 1)
        yield sp.csr_matrix(np.log1p(counts * (1e4 / totals)).astype(np.float32))


def write_dataset(path: Path, n_cells: int, n_genes: int, n_batches: int, seed: int) -> None:
    from deepexpr.data.stream import write_backed_csr

    obs = cell_design(n_cells, n_batches, seed)
    var = pd.DataFrame(index=[f"Gene{i + 1}" for i in range(n_genes)])
    write_backed_csr(path, simulated_blocks(obs, n_genes, seed), obs, var)


def rss_mb(peak: bool = True) -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of this process in MiB.

    /proc's counters start afresh at exec, unlike ru_maxrss, which a child inherits from the
    parent that forked it (here: the process that wrote the big file); ru_maxrss off Linux.
    """
    status = Path("/proc/self/status")
    if status.exists():
        key = "VmHWM:" if peak else "VmRSS:"
        for line in status.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def train_child(args) -> None:
    """Runs in a fresh process: setup, train, print one JSON line."""
    import torch

    from deepexpr.models.genex import GENEX

    torch.set_num_threads(args.threads)
    after_import = rss_mb()
    GENEX.setup_anndata(args.path)
    model = GENEX(args.path, seed=0)
    after_setup = rss_mb()
    batch_size = model.config["batch_size"]
    per_epoch = -(-model.source.n_cells // batch_size)
    seen = {"minibatches": 0}
    if args.max_minibatches:
        # Stop inside the first epoch after --max-minibatches rows have been read.
        original_rows = model.source.rows

        class Enough(Exception):
            pass

        def counted_rows(rows):
            if seen["minibatches"] >= args.max_minibatches:
                raise Enough
            seen["minibatches"] += 1
            return original_rows(rows)

        model.source.rows = counted_rows
        started = time.perf_counter()
        try:
            model.train(max_epochs=1, device=args.device, progress_every=1)
        except Enough:
            pass
        seconds = time.perf_counter() - started
        minibatches, per_epoch_seconds = seen["minibatches"], seconds / seen["minibatches"] * per_epoch
    else:
        started = time.perf_counter()
        model.train(max_epochs=args.epochs, device=args.device, progress_every=1)
        seconds = time.perf_counter() - started
        minibatches, per_epoch_seconds = per_epoch * args.epochs, seconds / args.epochs
    print(
        json.dumps(
            {
                "device": str(model.device),
                "minibatches": minibatches,
                "seconds_timed": seconds,
                "seconds_per_epoch": per_epoch_seconds,
                "extrapolated": bool(args.max_minibatches),
                "peak_rss_mb": rss_mb(),
                "rss_after_setup_mb": after_setup,
                "rss_after_import_mb": after_import,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--genes", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-minibatches", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/genex_scale"))
    parser.add_argument("--keep", action="store_true", help="keep the simulated files for the next run")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "genex_scale.tsv")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        args.path = args.child
        train_child(args)
        return

    from deepexpr.io import write_table

    args.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n_cells in args.cells:
        path = args.workdir / f"sim_{n_cells}x{args.genes}_seed{args.seed}.h5ad"
        if not path.exists():
            started = time.perf_counter()
            write_dataset(path, n_cells, args.genes, args.batches, args.seed)
            print(f"wrote {path} ({path.stat().st_size / 2**30:.2f} GB) in {time.perf_counter() - started:.0f} s", flush=True)
        command = [sys.executable, __file__, "--child", str(path), "--threads", str(args.threads),
                   "--device", args.device, "--epochs", str(args.epochs)]
        if args.max_minibatches:
            command += ["--max-minibatches", str(args.max_minibatches)]
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        record = json.loads(result.stdout.strip().splitlines()[-1])
        row = {"n_cells": n_cells, "n_genes": args.genes, "file_gb": path.stat().st_size / 2**30,
               "threads": args.threads, **record}
        rows.append(row)
        print(pd.DataFrame([row])[COLUMNS].round(3).to_string(index=False), flush=True)
        if not args.keep:
            path.unlink()
    table = pd.DataFrame(rows)[COLUMNS]
    write_table(table.round(4), args.out)
    print(table.round(3).to_string(index=False))
    print(f"written {args.out}")
    if not args.keep and not any(args.workdir.iterdir()):
        shutil.rmtree(args.workdir)


if __name__ == "__main__":
    main()
