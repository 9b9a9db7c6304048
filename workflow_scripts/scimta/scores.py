"""Rule scimta_scores: ARI/NMI of scIMTA beside Leiden on PCA and on the scVI latent (label-free
resolution + oracle rows), scib-metrics batch scores of the embeddings, and UMAP coordinates."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import numpy as np
import pandas as pd

from deepexpr.evaluate.scimta import batch_metrics, study_scores
from deepexpr.io import read_table, write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as logger:
    prepared = ad.read_h5ad(snakemake.input.prepared)
    scvi = ad.read_h5ad(snakemake.input.scvi)
    scvi_latent = np.asarray(scvi[prepared.obs_names].obsm["X_emb"], dtype=np.float32)
    runs = {f"scimta_{path.split('/')[-2]}": read_table(path).set_index("cell") for path in snakemake.input.cells}
    scores, umap_table, embeddings = study_scores(prepared, scvi_latent, runs, snakemake.params.resolutions, snakemake.params.seed)
    logger.info("scores:\n%s", scores.to_string())
    write_table(scores, snakemake.output.scores)
    write_table(umap_table, snakemake.output.umap)
    if prepared.obs["batch"].nunique() >= 2:
        batch = batch_metrics(embeddings, prepared, embeddings["pca"])
    else:
        logger.info("one batch: no batch metrics")
        batch = pd.DataFrame(columns=["method"])
    write_table(batch, snakemake.output.batch)
