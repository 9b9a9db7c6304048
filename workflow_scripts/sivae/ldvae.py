"""Rule sivae_ldvae: LDVAE (scvi-tools LinearSCVI) loadings and cell embedding of the siVAE study's size."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import time

import anndata as ad
import numpy as np
import torch

from deepexpr.genes import embedding_neighbours, ldvae_loadings, loading_norm_hub_score, write_gene_table
from deepexpr.io import write_h5ad, write_json, write_table
from deepexpr.models.sivae.settings import MODE_DEFAULTS
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    settings = snakemake.params.settings
    latent_dim = settings["latent_dim"] or MODE_DEFAULTS[settings["mode"]]["latent_dim"]
    adata = ad.read_h5ad(snakemake.input.adata)
    started = time.perf_counter()
    loadings, latent = ldvae_loadings(
        adata, n_latent=latent_dim, layer="counts", max_epochs=settings["ldvae_epochs"], seed=snakemake.params.seed
    )
    seconds = time.perf_counter() - started
    loadings = loadings.loc[adata.var_names]
    log.info("LDVAE: %d genes x %d dimensions in %.1f s", *loadings.shape, seconds)
    run = ad.AnnData(obs=adata.obs.copy(), var=adata.var.copy())
    run.obsm["X_ldvae"] = np.asarray(latent)
    run.varm["ldvae_loadings"] = loadings.to_numpy()
    run.uns["ldvae"] = {"seconds": seconds, "max_epochs": settings["ldvae_epochs"] or 0}
    write_gene_table(loading_norm_hub_score(loadings), embedding_neighbours(loadings, settings["k"]), snakemake.output.genes)
    write_table(loadings.rename_axis("gene"), snakemake.output.loadings, index=True)
    write_json({"seconds": seconds, "what": "training"}, snakemake.output.timing)
    write_h5ad(run, snakemake.output.run)
