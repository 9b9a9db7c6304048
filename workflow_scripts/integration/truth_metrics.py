"""Rule truth_metrics: corrected values of every full-output run against the simulated batch-free truth."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import pandas as pd

from deepexpr.io import write_table
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
    write_table(pd.DataFrame(rows), snakemake.output.summary)
    write_table(pd.concat(genes), snakemake.output.genes)
    write_table(pd.concat(samples), snakemake.output.sample)
