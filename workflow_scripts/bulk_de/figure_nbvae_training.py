"""Rule figure_nbvae_training: NB-VAE latent space and loss curves over the training seeds."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.training import plot_latent, plot_loss_curves
from deepexpr.workflow import rule_log

titles = {"dataset": snakemake.wildcards.dataset, "mode": snakemake.wildcards.mode}
with rule_log(snakemake.log[0]):
    plot_latent(snakemake.input.latents, snakemake.output.latent, **titles)
    plot_loss_curves(snakemake.input.histories, snakemake.output.loss, **titles)
