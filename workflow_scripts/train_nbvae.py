"""Rule train_nbvae: train one NB-VAE (one mode, one seed) on the prepared counts."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")

import anndata as ad
import torch

from deepexpr.io import write_table
from deepexpr.models.nbvae import NBVAE
from deepexpr.workflow import rule_log

settings = snakemake.params.settings
with rule_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    adata = ad.read_h5ad(snakemake.input.adata)
    NBVAE.setup_anndata(adata)
    model = NBVAE(
        adata,
        mode=snakemake.wildcards.mode,
        latent_dim=settings["latent_dim"],
        hidden=settings["hidden"],
        dispersion=settings["dispersion"],
        seed=int(snakemake.wildcards.seed),
    )
    model.train(max_epochs=settings["max_epochs"], lr=settings["learning_rate"], device=snakemake.params.device)
    log.info("training: %s", model.training_info)
    model.save(snakemake.output.model)
    write_table(model.history, snakemake.output.history)
    latent = model.get_latent().join(adata.obs.drop(columns="size_factor"))
    write_table(latent.rename_axis("sample"), snakemake.output.latent, index=True)
