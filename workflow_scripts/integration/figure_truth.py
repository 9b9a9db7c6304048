"""Rule figure_truth: corrected vs batch-free truth (scatter, accuracy bars, DE recovery bars)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.integration import plot_de_recovery, plot_truth_metrics, plot_truth_scatter
from deepexpr.workflow import rule_log

titles = {"dataset": snakemake.wildcards.dataset}
with rule_log(snakemake.log[0]):
    plot_truth_scatter(snakemake.input.summary, snakemake.input.sample, snakemake.output.truth_scatter, **titles)
    plot_truth_metrics(snakemake.input.summary, snakemake.output.truth_metrics, **titles)
    plot_de_recovery(snakemake.input.summary, snakemake.output.de_recovery, **titles)
