"""Rule train_plain_vae: a plain VAE of siVAE's size (its cell VAE alone, as many passes over the cells)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import torch

from deepexpr.io import write_h5ad, write_table
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
    run = ad.AnnData(obs=adata.obs.copy(), var=adata.var.copy())
    run.obsm["X_vae"] = model.get_cell_embedding().to_numpy()
    run.uns["vae"] = {"training": dict(model.training_info)}
    model.save(snakemake.output.model)
    write_table(model.history, snakemake.output.history)
    write_h5ad(run, snakemake.output.run)
