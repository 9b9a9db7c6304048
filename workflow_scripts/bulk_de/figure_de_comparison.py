"""Rule figure_de_comparison: generative DE vs pyDESeq2 figures of one contrast and mode."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots import de
from deepexpr.workflow import rule_log

titles = {
    "dataset": snakemake.wildcards.dataset,
    "label": snakemake.params.contrast["label"],
    "mode": snakemake.wildcards.mode,
}
comparison, generative, out = snakemake.input.comparison, snakemake.input.generative, snakemake.output
with rule_log(snakemake.log[0]):
    de.plot_lfc_scatter(comparison, out.lfc_scatter, **titles)
    de.plot_generative_volcano(generative, out.generative_volcano, **titles)
    de.plot_na_genes(comparison, out.na_genes, **titles)
    de.plot_seed_spread(generative, out.seed_spread, **titles)
    de.plot_credible_intervals(generative, out.credible_intervals, **titles)
