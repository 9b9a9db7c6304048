"""Rule scib: scIB metrics of every batch-correction run of a dataset (one process, one jax compile);
on simulated data also of the batch-free truth, as the reference row ``truth``."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.io import write_table
from deepexpr.evaluate.integration import read_runs, scib_table
from deepexpr.evaluate.truth import TRUTH_RUN, truth_reference_run
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    runs = read_runs(snakemake.input.runs)
    if snakemake.input.truth:  # simulated data: the batch-free truth is scored as a reference row
        prepared = ad.read_h5ad(snakemake.input.prepared[0])
        truth = ad.read_h5ad(snakemake.input.truth[0])
        runs[TRUTH_RUN] = truth_reference_run(truth, prepared, snakemake.params.seed)
    write_table(scib_table(runs, n_jobs=snakemake.threads), snakemake.output.table)
