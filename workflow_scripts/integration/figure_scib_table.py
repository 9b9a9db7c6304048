"""Rule figure_scib_table: the scIB results table of every batch-correction run."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.integration import plot_scib_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    plot_scib_table(snakemake.input.table, snakemake.output[0], dataset=snakemake.wildcards.dataset)
