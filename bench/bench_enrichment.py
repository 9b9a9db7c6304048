"""Prerank GSEA engines side by side on GSE60450's DE tables: gseapy vs blitzgsea.

Usage:
    python bench/bench_enrichment.py [--results results] [--gmt GMT] [--contrasts luminal_vs_basal lactate_vs_virgin]
        [--max-sets 1000] [--permutations 1000] [--threads 1 2] [--tsv bench/results/enrichment_engines.tsv]

Input: the pyDESeq2 tables the workflow wrote for GSE60450 (``snakemake gse60450 --configfile
config/offline.yaml``, ``results/gse60450/de/<contrast>/deseq2.tsv``) and the mouse GO BP
collection with Entrez ids (default ``../shared/data/genesets/WEHI_Mm.c5.bp.v7.1.entrez.gmt.gz``).
The ranking is the workflow's own for DESeq2 (shrunk LFC, ties by gene id; deepexpr.enrich).
Every engine gets the same sets, permutations, size limits and seed. ``--max-sets`` draws a
seeded random subset of the sets that pass the size filter (all 16k GO BP sets x 1,000
permutations take gseapy ~11 min per table on 2 cores); 0 = all.

For each table: gseapy on each ``--threads`` count, blitzgsea on the first. Written per run: wall
seconds, the ratio to gseapy on the same thread count, and agreement with gseapy: Spearman of NES,
Spearman of -log10 FDR, sign agreement of ES, and the Jaccard overlap of the sets at FDR < 0.05.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from deepexpr.enrich import prerank, read_gmt
from deepexpr.io import read_table, write_table

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GMT = REPO.parent / "shared" / "data" / "genesets" / "WEHI_Mm.c5.bp.v7.1.entrez.gmt.gz"
MIN_SIZE, MAX_SIZE, SEED = 15, 500, 0


def deseq2_ranking(path: Path) -> pd.Series:
    """The workflow's prerank input for a DESeq2 table: shrunk LFC (unshrunk where undefined)."""
    table = read_table(path, dtype={"gene_id": str})
    score = table["log2fc_shrunk"].fillna(table["log2fc"])
    return pd.Series(score.to_numpy(), index=table["gene_id"].astype(str)).dropna()


def subset_sets(gene_sets: dict, ranked: pd.Index, max_sets: int) -> dict:
    ranked = set(ranked)
    sizes = {term: len(ranked.intersection(genes)) for term, genes in gene_sets.items()}
    passing = sorted(term for term, size in sizes.items() if MIN_SIZE <= size <= MAX_SIZE)
    if max_sets and len(passing) > max_sets:
        passing = sorted(np.random.default_rng(SEED).choice(passing, size=max_sets, replace=False))
    return {term: gene_sets[term] for term in passing}


def agreement(result: pd.DataFrame, reference: pd.DataFrame) -> dict:
    merged = result.merge(reference, on="term", suffixes=("", "_gseapy"))
    significant = set(result.loc[result["padj"] < 0.05, "term"])
    significant_gseapy = set(reference.loc[reference["padj"] < 0.05, "term"])
    union = significant | significant_gseapy
    return {
        "n_sets_compared": len(merged),
        "spearman_nes": float(stats.spearmanr(merged["nes"], merged["nes_gseapy"]).statistic),
        "spearman_log_fdr": float(stats.spearmanr(-np.log10(merged["padj"]), -np.log10(merged["padj_gseapy"])).statistic),
        "es_sign_agreement": float((np.sign(merged["es"]) == np.sign(merged["es_gseapy"])).mean()),
        "n_fdr05": len(significant),
        "n_fdr05_gseapy": len(significant_gseapy),
        "jaccard_fdr05": len(significant & significant_gseapy) / len(union) if union else np.nan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=REPO / "results")
    parser.add_argument("--gmt", type=Path, default=DEFAULT_GMT)
    parser.add_argument("--contrasts", nargs="+", default=["luminal_vs_basal", "lactate_vs_virgin"])
    parser.add_argument("--max-sets", type=int, default=1000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tsv", type=Path, default=REPO / "bench" / "results" / "enrichment_engines.tsv")
    args = parser.parse_args()

    gene_sets = read_gmt(args.gmt)
    rows = []
    for contrast in args.contrasts:
        ranking = deseq2_ranking(args.results / "gse60450" / "de" / contrast / "deseq2.tsv")
        ranking = ranking.iloc[np.argsort(-ranking.abs().to_numpy(), kind="stable")]
        ranking = ranking[~ranking.index.duplicated()]
        sets = subset_sets(gene_sets, ranking.index, args.max_sets)
        runs = [("gseapy", threads) for threads in args.threads] + [("blitzgsea", args.threads[0])]
        results, seconds = {}, {}
        for engine, threads in runs:
            started = time.perf_counter()
            results[engine, threads] = prerank(
                ranking, sets, args.permutations, MIN_SIZE, MAX_SIZE, SEED, threads, engine=engine
            )
            seconds[engine, threads] = time.perf_counter() - started
            print(f"{contrast}: {engine} on {threads} thread(s): {seconds[engine, threads]:.1f} s", flush=True)
        for (engine, threads), result in results.items():
            reference = results["gseapy", threads]
            rows.append(
                {
                    "table": f"gse60450/{contrast}/deseq2",
                    "engine": engine,
                    "threads": threads,
                    "n_sets": len(sets),
                    "n_sets_in_gmt": len(gene_sets),
                    "permutations": args.permutations,
                    "seconds": seconds[engine, threads],
                    "ratio_to_gseapy_same_threads": seconds[engine, threads] / seconds["gseapy", threads],
                    "ratio_to_gseapy_1_thread": seconds[engine, threads] / seconds.get(("gseapy", 1), np.nan),
                    **agreement(result, reference),
                    "load_1min_end": os.getloadavg()[0],
                    "machine": f"{platform.machine()} {os.cpu_count()} cpus",
                }
            )
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    args.tsv.parent.mkdir(parents=True, exist_ok=True)
    write_table(table, args.tsv)


if __name__ == "__main__":
    main()
