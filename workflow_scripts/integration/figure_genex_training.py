"""Rule figure_genex_training: GENEX losses and Wasserstein estimate per epoch over the seeds."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.training import GENEX_HISTORY_PANELS, plot_loss_curves
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    plot_loss_curves(
        snakemake.input.histories,
        snakemake.output[0],
        panels=GENEX_HISTORY_PANELS,
        model="GENEX",
        dataset=snakemake.wildcards.dataset,
        mode=snakemake.wildcards.mode,
    )
