"""Rule integrate_baseline: one batch-correction baseline (unintegrated, ComBat, Harmony, Scanorama)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.integration.baselines import integrate
from deepexpr.io import write_h5ad
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    prepared = ad.read_h5ad(snakemake.input.adata)
    result = integrate(
        snakemake.wildcards.baseline, prepared, seed=snakemake.params.seed, params=snakemake.params.settings
    )
    write_h5ad(result, snakemake.output.adata)
