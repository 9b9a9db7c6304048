"""Rule scimta_scores: ARI/NMI of scIMTA beside Leiden on PCA and on the scVI latent (label-free
resolution + oracle rows), scib-metrics batch scores of the embeddings, and UMAP coordinates."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import numpy as np
import pandas as pd

from deepexpr.evaluate.scimta import batch_metrics, leiden_rows, pca_embedding, scimta_row
from deepexpr.io import read_table, write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as logger:
    prepared = ad.read_h5ad(snakemake.input.prepared)
    labels = prepared.obs["cell_type"].astype(str).to_numpy()
    seed, resolutions = snakemake.params.seed, snakemake.params.resolutions
    pca = pca_embedding(prepared, 50, seed)
    scvi = ad.read_h5ad(snakemake.input.scvi)
    scvi_latent = np.asarray(scvi[prepared.obs_names].obsm["X_emb"], dtype=np.float32)
    tables, embeddings = [], {"pca": pca, "scvi": scvi_latent}
    for name, embedding in (("leiden_pca", pca), ("leiden_scvi", scvi_latent)):
        tables.append(leiden_rows(name, embedding, labels, resolutions, seed=seed)[0])
    umap_cells = None
    for path in snakemake.input.cells:
        run = path.split("/")[-2]
        cells = read_table(path).set_index("cell").reindex(prepared.obs_names)
        z = cells.filter(regex=r"^z\d+$").to_numpy()
        embeddings[f"scimta_{run}"] = z
        tables.append(pd.DataFrame([scimta_row(f"scimta_{run}", cells["cluster"].to_numpy(), z, labels)]))
        if umap_cells is None:
            import umap

            coordinates = umap.UMAP(random_state=seed, n_jobs=1).fit_transform(z)
            umap_cells = pd.DataFrame(
                {"cell": prepared.obs_names, "umap1": coordinates[:, 0], "umap2": coordinates[:, 1],
                 "cluster": cells["cluster"].to_numpy(), "cell_type": labels}
            )
    scores = pd.concat(tables, ignore_index=True)
    logger.info("scores:\n%s", scores.to_string())
    write_table(scores, snakemake.output.scores)
    write_table(umap_cells, snakemake.output.umap)
    if prepared.obs["batch"].nunique() >= 2:
        batch = batch_metrics(embeddings, prepared, pca)
    else:
        logger.info("one batch: no batch metrics")
        batch = pd.DataFrame(columns=["method"])
    write_table(batch, snakemake.output.batch)
