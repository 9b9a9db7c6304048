"""Rule figure_truth_curves: ROC and PR curves of both methods against the simulated truth."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.de import plot_pr, plot_roc
from deepexpr.workflow import rule_log

titles = {
    "dataset": snakemake.wildcards.dataset,
    "label": snakemake.params.contrast["label"],
    "mode": snakemake.wildcards.mode,
}
with rule_log(snakemake.log[0]):
    plot_roc(snakemake.input.comparison, snakemake.output.roc, **titles)
    plot_pr(snakemake.input.comparison, snakemake.output.pr, **titles)
