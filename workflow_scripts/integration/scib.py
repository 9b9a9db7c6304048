"""Rule scib: scIB metrics of every batch-correction run of a dataset (one process, one jax compile);
on simulated data also of the batch-free truth, as the reference row ``truth``. Each run's note
(capped scVI epochs, Harmony's stop) is a column; the summary holds mean and sd over seeds per
method and mode."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.io import write_table
from deepexpr.evaluate.integration import read_runs, run_note, scib_table, seed_summary
from deepexpr.metrics.integration import SCIB_COLUMNS
from deepexpr.evaluate.truth import TRUTH_RUN, truth_reference_run
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    runs = read_runs(snakemake.input.runs)
    if snakemake.input.truth:  # simulated data: the batch-free truth is scored as a reference row
        prepared = ad.read_h5ad(snakemake.input.prepared[0])
        truth = ad.read_h5ad(snakemake.input.truth[0])
        runs[TRUTH_RUN] = truth_reference_run(truth, prepared, snakemake.params.seed)
    table = scib_table(runs, n_jobs=snakemake.threads)
    table.insert(4, "note", [run_note(runs[run]) if run != TRUTH_RUN else "" for run in table["run"]])
    write_table(table, snakemake.output.table)
    write_table(seed_summary(table, SCIB_COLUMNS[4:]), snakemake.output.summary)
