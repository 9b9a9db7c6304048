"""Rule figure_sivae_embeddings: siVAE's cell embedding (by cell type) and gene embedding (by
planted module on simulated data, by marker gene on real data)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.plots.sivae import plot_cell_embedding, plot_gene_embedding
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    run = ad.read_h5ad(snakemake.input.run)
    truth_var = ad.read_h5ad(snakemake.input.truth[0]).var if snakemake.input.truth else None
    plot_cell_embedding(run.obsm["X_sivae"], run.obs["cell_type"], out=snakemake.output.cells)
    plot_gene_embedding(
        run.varm["sivae_loadings"], run.var_names, truth_var, snakemake.params.markers, out=snakemake.output.genes
    )
