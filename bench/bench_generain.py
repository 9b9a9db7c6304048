"""GeneRAIN speed and memory, as ratios from one run:

1. Binning throughput against the raw h5py read of the same sample blocks (simulated ARCHS4 file):
   reading every block, then scaling + Binning-By-Gene of the same blocks held in memory.
2. Peak memory of prepare_binned (QC, boundaries, binned memmap) as the number of samples grows
   10x, each size in fresh subprocesses: tracemalloc peak (numpy and Python allocations) in one, peak
   RSS (everything, including torch and HDF5) in another. The boundary subsample is held at a fixed number of samples (the boundary fraction scales
   as 1/N), as the paper's 0.005 of a fixed corpus is.
3. Training tokens/s on the CPU for each variant (same small transformer, same data).
4. Only when CUDA is available: GPT at the paper's size (d_model 200, 6 layers, 4 heads, FF 800,
   2,048 genes per sample) with bf16 autocast: tokens/s and model FLOPs utilisation against the
   device's bf16 dense peak.

    .venv/bin/python bench/bench_generain.py [--out bench/results/generain.json] [--workdir DIR]
        [--parts binning memory cpu gpu]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from deepexpr.data.archs4 import (  # noqa: E402
    fit_boundaries,
    gene_map,
    iter_sample_blocks,
    open_archs4,
    prepare_binned,
    scale_log,
    simulate_archs4,
    transform,
)
from deepexpr.models.generain import GeneRAIN  # noqa: E402

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets.
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}
BOUNDARY_SAMPLES = 200
PARTS = ("binning", "memory", "cpu", "gpu")
SMALL_MODEL = {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 256, "seq_len": 256, "batch_size": 16,
               "grad_accumulation": 1, "lr": 1e-3, "eval_every": 10_000}  # fmt: skip
PAPER_GPT = {"d_model": 200, "n_layers": 6, "n_heads": 4, "d_ff": 800, "seq_len": 2048, "batch_size": 12,
             "grad_accumulation": 1, "lr": 1e-4, "eval_every": 10_000}  # fmt: skip


def binning_vs_read(path: Path, block: int = 512, repeats: int = 3) -> dict:
    archs4 = open_archs4(path)
    genes = gene_map(archs4, "sum")
    columns = np.arange(archs4.n_samples)
    boundaries = fit_boundaries(archs4, genes, columns, n_bins=2000, fraction=0.1)
    transform(np.zeros((1, 1)), boundaries[:1])  # compile the kernel before timing
    # Best of `repeats` for both, so a busy machine's noise hits them alike.
    read = binned = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        blocks = [counts for _, counts in iter_sample_blocks(path, columns, block)]
        read = min(read, time.perf_counter() - start)
        start = time.perf_counter()
        for counts in blocks:
            transform(scale_log(genes.apply(counts)), boundaries)
        binned = min(binned, time.perf_counter() - start)
    return {
        "samples": archs4.n_samples,
        "genes": len(genes.genes),
        "n_bins": 2000,
        "repeats": repeats,
        "read_seconds": read,
        "bin_seconds": binned,
        "read_samples_per_s": archs4.n_samples / read,
        "bin_samples_per_s": archs4.n_samples / binned,
        "ratio_bin_over_read_throughput": read / binned,
    }


def memory_child(path: str, out_dir: str, samples: int, traced: bool) -> None:
    """Child process: prepare_binned; prints one JSON line with the tracemalloc peak (``traced``) or
    the peak RSS (not traced: tracemalloc's own bookkeeping grows with the live allocations)."""
    if traced:
        tracemalloc.start()
    prepare_binned(path, out_dir, n_bins=2000, boundary_fraction=min(1.0, BOUNDARY_SAMPLES / samples),
                   qc={"min_nonzero_genes": 100})  # fmt: skip
    if traced:
        print(json.dumps({"tracemalloc_peak_mib": tracemalloc.get_traced_memory()[1] / 2**20}))
    else:
        # VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across fork + exec, so a child
        # would report the bench process's own (larger) peak.
        status = Path("/proc/self/status").read_text().splitlines()
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
        print(json.dumps({"peak_rss_mib": peak_kib / 1024}))


def memory_growth(workdir: Path, sizes=(1000, 10_000), genes: int = 2000) -> dict:
    records = []
    for samples in sizes:
        path = workdir / f"memory_{samples}.h5"
        simulate_archs4(path, n_samples=samples, n_genes=genes, n_series=max(20, samples // 50), seed=1)
        record = {"samples": samples}
        for traced in ("1", "0"):
            result = subprocess.run(
                [sys.executable, __file__, "--memory-child", str(path), str(workdir / f"binned_{samples}"), str(samples), traced],
                capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
            )  # fmt: skip
            record.update(json.loads(result.stdout.strip().splitlines()[-1]))
        records.append(record)
    small, large = records
    return {
        "runs": records,
        "ratio_tracemalloc_peak": large["tracemalloc_peak_mib"] / small["tracemalloc_peak_mib"],
        "ratio_peak_rss": large["peak_rss_mib"] / small["peak_rss_mib"],
    }


def cpu_tokens_per_second(binned: Path, steps: int = 20) -> dict:
    rates = {}
    for variant in ("gpt", "bert_genes", "bert_expression"):
        model = GeneRAIN(binned, variant=variant, **SMALL_MODEL)
        model.train(max_steps=2, device="cpu", progress_bar=False)  # warm-up (allocator, kernels)
        model = GeneRAIN(binned, variant=variant, **SMALL_MODEL)
        start = time.perf_counter()
        model.train(max_steps=steps, device="cpu", progress_bar=False)
        seconds = time.perf_counter() - start
        length = min(SMALL_MODEL["seq_len"], len(model.genes))
        rates[variant] = steps * SMALL_MODEL["batch_size"] * length / seconds
    return {"model": SMALL_MODEL, "threads": torch.get_num_threads(), "tokens_per_s": rates}


def gpu_paper_gpt(workdir: Path, steps: int = 30) -> dict:
    """GPT at paper size on a simulated corpus with 4,096 genes (so 2,048-gene sequences fill)."""
    path = workdir / "gpu.h5"
    simulate_archs4(path, n_samples=2000, n_genes=4096, n_series=40, module_size=100, seed=2)
    binned = prepare_binned(path, workdir / "gpu_binned", n_bins=2000, qc={"min_nonzero_genes": 1000})
    model = GeneRAIN(binned, variant="gpt", **PAPER_GPT)
    model.train(max_steps=3, device="cuda", progress_bar=False)
    model = GeneRAIN(binned, variant="gpt", **PAPER_GPT)
    torch.cuda.synchronize()
    start = time.perf_counter()
    model.train(max_steps=steps, device="cuda", progress_bar=False)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = steps * PAPER_GPT["batch_size"] * (PAPER_GPT["seq_len"] - 1)
    params = sum(p.numel() for p in model.module.parameters())
    d, layers, length = PAPER_GPT["d_model"], PAPER_GPT["n_layers"], PAPER_GPT["seq_len"]
    # 6 N per token for the weights (forward + backward) plus attention scores and values (12 L T d).
    flops_per_token = 6 * params + 12 * layers * length * d
    name = torch.cuda.get_device_name()
    peak = next((tflops for key, tflops in BF16_PEAK_TFLOPS.items() if key in name), None)
    achieved = flops_per_token * tokens / seconds
    return {
        "device": name,
        "parameters": params,
        "tokens_per_s": tokens / seconds,
        "achieved_tflops": achieved / 1e12,
        "bf16_peak_tflops": peak,
        "mfu": achieved / (peak * 1e12) if peak else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "generain.json")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to measure (default: all)")
    parser.add_argument("--memory-child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], args.memory_child[1], int(args.memory_child[2]), args.memory_child[3] == "1")
        return
    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_generain."))
    workdir.mkdir(parents=True, exist_ok=True)
    record = {}
    if "binning" in args.parts:
        throughput = workdir / "throughput.h5"
        simulate_archs4(throughput, n_samples=4000, n_genes=2000, n_series=80, seed=0)
        record["binning"] = binning_vs_read(throughput)
        print("binning:", record["binning"], flush=True)
    if "memory" in args.parts:
        record["memory"] = memory_growth(workdir)
        print("memory:", record["memory"], flush=True)
    if "cpu" in args.parts:
        small = workdir / "small.h5"
        simulate_archs4(small, n_samples=300, n_genes=600, n_series=30, seed=0)
        binned = prepare_binned(small, workdir / "small_binned", n_bins=100, qc={"min_nonzero_genes": 100})
        record["cpu_training"] = cpu_tokens_per_second(binned)
        print("cpu training:", record["cpu_training"], flush=True)
    if "gpu" in args.parts:
        record["gpu_paper_gpt"] = gpu_paper_gpt(workdir) if torch.cuda.is_available() else "no CUDA device"
        print("gpu:", record["gpu_paper_gpt"], flush=True)
    record["load_average_1min"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
