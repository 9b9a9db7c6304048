"""Rule sivae_pca: PCA of the z-scored log expression with as many components as siVAE's latent dimensions."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import time

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import PCA

from deepexpr.genes import embedding_neighbours, write_gene_table
from deepexpr.io import write_h5ad, write_json, write_table
from deepexpr.models.sivae.settings import MODE_DEFAULTS
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    settings = snakemake.params.settings
    n_components = settings["latent_dim"] or MODE_DEFAULTS[settings["mode"]]["latent_dim"]
    adata = ad.read_h5ad(snakemake.input.adata)
    x = np.asarray(adata.X.toarray() if sp.issparse(adata.X) else adata.X, dtype=np.float64)
    sd = x.std(axis=0)
    scaled = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)  # siVAE's Gaussian input is z-scored too
    started = time.perf_counter()
    pca = PCA(n_components=n_components, random_state=snakemake.params.seed)
    cells = pca.fit_transform(scaled)
    seconds = time.perf_counter() - started
    columns = [f"pc{i + 1}" for i in range(n_components)]
    loadings = pd.DataFrame(pca.components_.T, index=adata.var_names.astype(str), columns=columns)
    # Per-gene share of variance the components explain: PCA's reconstruction-based centrality.
    reconstruction = cells @ pca.components_
    explained = 1 - ((scaled - reconstruction) ** 2).sum(axis=0) / np.maximum((scaled**2).sum(axis=0), 1e-12)
    hubs = pd.Series(explained, index=loadings.index)
    log.info("PCA: %d components, %.3f of the variance", n_components, pca.explained_variance_ratio_.sum())
    run = ad.AnnData(obs=adata.obs.copy(), var=adata.var.copy())
    run.obsm["X_pca"] = cells
    run.varm["pca_loadings"] = loadings.to_numpy()
    run.var["pca_variance_explained"] = explained
    write_gene_table(hubs, embedding_neighbours(loadings, settings["k"]), snakemake.output.genes)
    write_table(loadings.rename_axis("gene"), snakemake.output.loadings, index=True)
    write_json({"seconds": seconds, "what": "fit"}, snakemake.output.timing)
    write_h5ad(run, snakemake.output.run)
