"""Rule figure_generain_auc: ROC-AUC per attribute of every embedding and baseline."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.generain import plot_auc_distributions
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    plot_auc_distributions(
        snakemake.input.scores, snakemake.output[0], dataset=snakemake.wildcards.dataset, mode=snakemake.wildcards.mode
    )
