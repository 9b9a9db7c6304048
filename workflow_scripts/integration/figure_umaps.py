"""Rule figure_umaps: UMAPs of every run, coloured by batch and by cell type."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.integration import plot_umaps
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    for color in ("batch", "cell_type"):
        plot_umaps(snakemake.input.table, color, snakemake.output[color], dataset=snakemake.wildcards.dataset)
