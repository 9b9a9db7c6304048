"""Rule scimta_figure_imputation: imputation error vs none against the simulated truth."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.scimta import plot_imputation
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    plot_imputation(snakemake.input.table, out=snakemake.output.figure, dataset=snakemake.wildcards.dataset)
