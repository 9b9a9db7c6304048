"""Rule scib: scIB metrics of every batch-correction run of a dataset (one process, one jax compile)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")

from deepexpr.io import write_table
from deepexpr.metrics.integration import read_runs, scib_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    runs = read_runs(snakemake.input.runs)
    write_table(scib_table(runs, n_jobs=snakemake.threads), snakemake.output.table)
