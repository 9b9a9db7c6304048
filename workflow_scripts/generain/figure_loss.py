"""Rule figure_generain_loss: train and validation loss per step of each GeneRAIN variant."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.generain import plot_generain_loss
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    plot_generain_loss(
        dict(zip(snakemake.params.variants, snakemake.input.histories)),
        snakemake.output[0],
        dataset=snakemake.wildcards.dataset,
        mode=snakemake.wildcards.mode,
    )
