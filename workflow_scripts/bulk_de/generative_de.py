"""Rules generative_de and generative_de_predictive: NB-VAE generative DE of one contrast (one statistic),
pooled over the training seeds."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import torch

from deepexpr.de.generative import generative_de_from_models
from deepexpr.io import write_table
from deepexpr.models.nbvae import NBVAE
from deepexpr.workflow import rule_log

settings = snakemake.params.settings
with rule_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    adata = ad.read_h5ad(snakemake.input.adata)
    NBVAE.setup_anndata(adata)
    table = generative_de_from_models(
        snakemake.input.models,
        adata,
        snakemake.params.contrast,
        n_samples=settings["n_posterior_samples"],
        delta=settings["delta"],
        fdr_target=settings["fdr_target"],
        statistic=snakemake.params.statistic,
    )
    log.info("%s: %d genes, %d called at expected FDR %.2f", snakemake.params.statistic, len(table), table["called"].sum(), settings["fdr_target"])
    write_table(table, snakemake.output.table)
