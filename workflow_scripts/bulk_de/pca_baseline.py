"""Rule pca_baseline: PCA(2) of the log-normalised expression, the linear latent baseline."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.evaluate.latent import pca_latent
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    write_table(pca_latent(ad.read_h5ad(snakemake.input.adata)), snakemake.output.latent)
