"""Rule figure_explain: attribution heatmap, dot plot and IG completeness of one covariate."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.explain import plot_explain_completeness, plot_explain_dotplot, plot_explain_heatmap
from deepexpr.workflow import rule_log

top = snakemake.params.top_genes
titles = {"dataset": snakemake.wildcards.dataset}
with rule_log(snakemake.log[0]):
    plot_explain_heatmap(snakemake.input.genes, snakemake.output.heatmap, top, snakemake.input.summary, **titles)
    plot_explain_dotplot(snakemake.input.genes, snakemake.output.dotplot, top, **titles)
    plot_explain_completeness(
        snakemake.input.cells, snakemake.output.completeness, covariate=snakemake.wildcards.covariate, **titles
    )
