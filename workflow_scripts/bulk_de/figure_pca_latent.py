"""Rule figure_pca_latent: PCA(2) baseline latent space."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.training import plot_pca_latent
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    plot_pca_latent(snakemake.input.latent, snakemake.output[0], dataset=snakemake.wildcards.dataset)
