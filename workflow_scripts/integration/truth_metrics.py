"""Rule truth_metrics: corrected values of every full-output run against the simulated batch-free truth;
the summary holds mean and sd over seeds per method and mode."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import pandas as pd

from deepexpr.io import write_table
from deepexpr.evaluate.integration import seed_summary
from deepexpr.evaluate.truth import truth_metrics
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    truth = ad.read_h5ad(snakemake.input.truth)
    prepared = ad.read_h5ad(snakemake.input.prepared)
    rows, genes, samples = [], [], []
    for path in snakemake.input.runs:
        row, per_gene, sample = truth_metrics(ad.read_h5ad(path), truth, prepared, snakemake.params.seed, Path(path).stem)
        rows.append(row)
        genes.append(per_gene)
        samples.append(sample)
    table = pd.DataFrame(rows)
    write_table(table, snakemake.output.summary)
    metrics = [column for column in table.columns if column not in ("run", "method", "mode", "seed")]
    write_table(seed_summary(table, metrics), snakemake.output.seeds)
    write_table(pd.concat(genes), snakemake.output.genes)
    write_table(pd.concat(samples), snakemake.output.sample)
