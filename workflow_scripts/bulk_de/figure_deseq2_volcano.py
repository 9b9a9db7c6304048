"""Rule figure_deseq2_volcano: pyDESeq2 volcano plot of one contrast."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.de import plot_volcano
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    plot_volcano(
        snakemake.input.table,
        snakemake.output[0],
        dataset=snakemake.wildcards.dataset,
        label=snakemake.params.contrast["label"],
    )
