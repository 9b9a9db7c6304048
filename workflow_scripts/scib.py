"""Rule scib: scIB metrics of every batch-correction run of a dataset (one process, one jax compile)."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")

import anndata as ad

from deepexpr.io import write_table
from deepexpr.metrics.integration import scib_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    runs = {Path(path).stem: ad.read_h5ad(path) for path in snakemake.input.runs}
    write_table(scib_table(runs, n_jobs=snakemake.threads), snakemake.output.table)
