"""NB-VAE (all seeds + generative DE) vs pyDESeq2 on GSE60450, side by side in one process.

Usage:
    python bench/bench_nbvae_vs_deseq2.py [DATA_DIR] [--seeds 0 1 2 3 4] [--mode corrected]
        [--threads 2] [--json benchmarks/nbvae_vs_deseq2.json]

DATA_DIR holds GSE60450_LactationGenewiseCounts.txt.gz (default ../shared/data/gse60450 beside
the checkout). Both methods get the same CPU budget: pyDESeq2 ``n_cpus=threads`` and torch
``set_num_threads(threads)``. Prints both wall times, their ratio (NB-VAE / pyDESeq2) and the
LFC Pearson of the two methods as a sanity check; ``--json`` also writes them as a record.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydeseq2.dds import DeseqDataSet
from pydeseq2.default_inference import DefaultInference
from pydeseq2.ds import DeseqStats

from deepexpr.data.bulk.read import build_bulk_adata, match_samples, read_genewise_counts, read_sample_sheet
from deepexpr.io import write_json
from deepexpr.de.generative import combine_seeds
from deepexpr.models.nbvae import NBVAE

REPO = Path(__file__).resolve().parents[1]
COUNTS_FILE = "GSE60450_LactationGenewiseCounts.txt.gz"
CONTRAST = {
    "name": "luminal_vs_basal",
    "design": "~cell_type",
    "factor": "cell_type",
    "test": "luminal",
    "reference": "basal",
}


def load_gse60450(data_dir: Path):
    counts_path = data_dir / COUNTS_FILE
    sheet_path = REPO / "resources" / "gse60450_samples.tsv"
    counts, lengths = read_genewise_counts(counts_path)
    sheet = read_sample_sheet(sheet_path, design_columns=["cell_type", "status"])
    counts = match_samples(counts, sheet, counts_path, sheet_path)
    return build_bulk_adata(counts, sheet, ["cell_type", "status"], lengths=lengths, dataset="gse60450")


def run_deseq2(adata, threads: int) -> tuple[pd.DataFrame, float]:
    """pyDESeq2 fit + Wald test summary, as the workflow's DE rule runs it; returns (results, seconds)."""
    counts = pd.DataFrame(np.asarray(adata.layers["counts"]), index=adata.obs_names, columns=adata.var_names)
    metadata = adata.obs[["cell_type"]].astype(str)
    inference = DefaultInference(n_cpus=threads)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dds = DeseqDataSet(
            counts=counts, metadata=metadata, design=CONTRAST["design"], inference=inference, quiet=True
        )
        dds.deseq2()
        stats = DeseqStats(dds, contrast=["cell_type", "luminal", "basal"], inference=inference, quiet=True)
        stats.summary()
    return stats.results_df, time.perf_counter() - started


def run_nbvae(adata, seeds: list[int], mode: str) -> tuple[pd.DataFrame, float, list[dict]]:
    """Train one model per seed, run generative DE on each and pool; returns (table, seconds, seed info)."""
    started = time.perf_counter()
    NBVAE.setup_anndata(adata)
    tables, draws, info = [], [], []
    for seed in seeds:
        model = NBVAE(adata, mode=mode, seed=seed)
        model.train(device="cpu", log_every=10**9)
        table, seed_draws = model.differential_expression(CONTRAST, seed=seed, return_draws=True)
        tables.append(table)
        draws.append(seed_draws)
        info.append({"seed": seed, **model.training_info})
    pooled = combine_seeds(tables, draws, seeds, model.config["lfc_estimator"])
    return pooled, time.perf_counter() - started, info


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "data_dir", nargs="?", type=Path, default=REPO.parent / "shared" / "data" / "gse60450"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--mode", choices=["corrected", "faithful"], default="corrected")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the record here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    adata = load_gse60450(args.data_dir)
    deseq2, deseq2_seconds = run_deseq2(adata, args.threads)
    generative, nbvae_seconds, seed_info = run_nbvae(adata, args.seeds, args.mode)

    joined = generative.set_index("gene_id").join(deseq2[["log2FoldChange", "padj"]], how="inner")
    tested = joined[joined["padj"].notna()]

    def pearson(column: str) -> float:
        return float(np.corrcoef(tested[column], tested["log2FoldChange"])[0, 1])

    record = {
        "dataset": "gse60450",
        "contrast": CONTRAST["name"],
        "n_genes": int(adata.n_vars),
        "mode": args.mode,
        "seeds": args.seeds,
        "threads": args.threads,
        "deseq2_seconds": deseq2_seconds,
        "nbvae_seconds": nbvae_seconds,
        "ratio_nbvae_over_deseq2": nbvae_seconds / deseq2_seconds,
        "pearson_lfc_vs_deseq2": pearson("lfc_mean"),
        "pearson_lfc_vs_deseq2_seeds": [pearson(f"lfc_mean_seed{seed}") for seed in args.seeds],
        "epochs_per_seed": [info["epochs"] for info in seed_info],
        "load_average_1min": os.getloadavg()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
    }
    load = record["load_average_1min"]
    print(f"GSE60450 {CONTRAST['name']}: {adata.n_vars} genes, {args.threads} threads, load {load:.2f}")
    print(f"{'pyDESeq2 (deseq2 + summary):':38s}{deseq2_seconds:8.1f} s")
    label = f"NB-VAE {args.mode}, {len(args.seeds)} seeds (train + DE):"
    print(f"{label:38s}{nbvae_seconds:8.1f} s  epochs {record['epochs_per_seed']}")
    print(f"{'ratio NB-VAE / pyDESeq2:':38s}{record['ratio_nbvae_over_deseq2']:8.2f}")
    print(
        f"generative LFC vs DESeq2 log2FC Pearson: pooled {record['pearson_lfc_vs_deseq2']:.4f}, per seed "
        f"{[round(r, 4) for r in record['pearson_lfc_vs_deseq2_seeds']]}"
    )
    if args.json:
        write_json(record, args.json)


if __name__ == "__main__":
    main()
