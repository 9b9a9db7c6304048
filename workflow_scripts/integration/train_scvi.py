"""Rule train_scvi: the scVI baseline (scvi-tools) on the prepared counts, one mode (settings variant) and seed."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.integration.baselines import integrate
from deepexpr.io import write_h5ad
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    prepared = ad.read_h5ad(snakemake.input.adata)
    params = {**snakemake.params.settings, "device": snakemake.params.device, "threads": snakemake.threads}
    result = integrate("scvi", prepared, seed=int(snakemake.wildcards.seed), params=params)
    result.uns["integration"]["mode"] = snakemake.wildcards.mode
    write_h5ad(result, snakemake.output.adata)
