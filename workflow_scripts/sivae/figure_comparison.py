"""Rule figure_sivae_comparison: loading agreement heatmap, hub score vs variance explained,
neighbourhood Jaccard heatmap and kNN accuracy bars of the siVAE study."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.genes import read_gene_table
from deepexpr.io import read_table
from deepexpr.plots.sivae import plot_agreement, plot_hubs, plot_jaccard, plot_knn
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    plot_agreement(read_table(snakemake.input.agreement), out=snakemake.output.agreement)
    plot_jaccard(read_table(snakemake.input.jaccard), out=snakemake.output.jaccard)
    plot_knn(read_table(snakemake.input.knn), out=snakemake.output.knn)
    truth_var = ad.read_h5ad(snakemake.input.truth[0]).var if snakemake.input.truth else None
    _, hubs = read_gene_table(snakemake.input.sivae_genes)
    _, explained = read_gene_table(snakemake.input.pca_genes)
    plot_hubs(hubs, explained, truth_var, out=snakemake.output.hubs)
