"""Rule train_nbvae: train one NB-VAE (one mode, one seed) on the prepared counts."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import torch

from deepexpr.io import read_table, write_table
from deepexpr.models.nbvae import NBVAE
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    adata = ad.read_h5ad(snakemake.input.adata)
    NBVAE.setup_anndata(adata)
    # dispersion: deseq2 plugs in pyDESeq2's MAP dispersions (input only then).
    dispersions = snakemake.input.get("dispersions")
    alpha = read_table(dispersions, dtype={"gene_id": str}).set_index("gene_id")["dispersion"] if dispersions else None
    model = NBVAE(
        adata,
        mode=snakemake.wildcards.mode,
        seed=int(snakemake.wildcards.seed),
        dispersion_values=alpha,
        **snakemake.params.settings,
    )
    model.train(device=snakemake.params.device)
    log.info("training: %s", model.training_info)
    model.save(snakemake.output.model)
    write_table(model.history, snakemake.output.history)
    write_table(model.dispersion_table(), snakemake.output.dispersion)
    latent = model.get_latent().join(adata.obs.drop(columns="size_factor"))
    write_table(latent.rename_axis("sample"), snakemake.output.latent, index=True)
