"""Rule scimta_figures: every scIMTA figure of one dataset."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.scimta import plot_community_heatmap, plot_scimta_scores, plot_scimta_umap, plot_search
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    dataset = snakemake.wildcards.dataset
    plot_scimta_umap(snakemake.input.umap, out=snakemake.output.umap, dataset=dataset)
    plot_scimta_scores(snakemake.input.scores, out=snakemake.output.scores, dataset=dataset)
    plot_community_heatmap(snakemake.input.communities, out=snakemake.output.communities, dataset=dataset)
    plot_search(snakemake.input.search, out=snakemake.output.search, dataset=dataset)
