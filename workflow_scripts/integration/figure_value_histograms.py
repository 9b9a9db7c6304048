"""Rule figure_value_histograms: distributions of corrected values with % zeros and % negatives."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.integration import plot_value_histograms
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    plot_value_histograms(
        snakemake.input.histogram, snakemake.input.summary, snakemake.output[0], dataset=snakemake.wildcards.dataset
    )
