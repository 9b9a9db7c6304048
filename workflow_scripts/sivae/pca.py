"""Rule sivae_pca: PCA of the z-scored log expression with as many components as siVAE's latent dimensions."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import time

import anndata as ad
import numpy as np
import scipy.sparse as sp

from deepexpr.genes import embedding_neighbours, pca_loadings, write_gene_table
from deepexpr.io import write_h5ad, write_json, write_table
from deepexpr.models.sivae.settings import MODE_DEFAULTS
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    settings = snakemake.params.settings
    n_components = settings["latent_dim"] or MODE_DEFAULTS[settings["mode"]]["latent_dim"]
    adata = ad.read_h5ad(snakemake.input.adata)
    x = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    started = time.perf_counter()
    loadings, scores, explained = pca_loadings(x, adata.var_names, n_components, seed=snakemake.params.seed)
    seconds = time.perf_counter() - started
    log.info("PCA: %d components in %.2f s", n_components, seconds)
    run = ad.AnnData(obs=adata.obs.copy(), var=adata.var.copy())
    run.obsm["X_pca"], run.varm["pca_loadings"] = scores, loadings.to_numpy()
    run.var["pca_variance_explained"] = explained.to_numpy()
    # PCA's centrality is reconstruction-based, as siVAE's: the share of each gene's variance explained.
    write_gene_table(explained, embedding_neighbours(loadings, settings["k"]), snakemake.output.genes)
    write_table(loadings.rename_axis("gene"), snakemake.output.loadings, index=True)
    write_json({"seconds": seconds, "what": "fit"}, snakemake.output.timing)
    write_h5ad(run, snakemake.output.run)
