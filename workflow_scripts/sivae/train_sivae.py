"""Rule train_sivae: siVAE or siVAE-0 (one seed); cell and gene embeddings, neighbourhoods, hub scores."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import torch

from deepexpr.genes import embedding_neighbours, write_gene_table
from deepexpr.io import write_h5ad, write_json, write_table
from deepexpr.models.sivae import SIVAE
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    adata = ad.read_h5ad(snakemake.input.adata)
    SIVAE.setup_anndata(adata, layer="counts", label_key="cell_type" if "cell_type" in adata.obs else None)
    model = SIVAE(adata, mode=snakemake.params.mode, seed=int(snakemake.wildcards.seed), **snakemake.params.settings)
    model.train(
        device=snakemake.params.device,
        checkpoint_dir=snakemake.params.checkpoint_dir,
        checkpoint_every=snakemake.params.checkpoint_every,
    )
    log.info("training: %s", model.training_info)
    # The AnnData contract without a copy of the expression: obs/var plus the model's outputs.
    run = model.annotate(ad.AnnData(obs=adata.obs.copy(), var=adata.var.copy()), k=snakemake.params.k)
    loadings = model.get_gene_embedding()
    write_gene_table(
        run.var["sivae_hub_reconstruction"].rename("hub_score"),
        embedding_neighbours(loadings, snakemake.params.k),
        snakemake.output.genes,
    )
    write_table(loadings.rename_axis("gene"), snakemake.output.loadings, index=True)
    write_json({"seconds": model.training_info["train_seconds"], "what": "training"}, snakemake.output.timing)
    model.save(snakemake.output.model)
    write_table(model.history, snakemake.output.history)
    write_h5ad(run, snakemake.output.run)
