"""Rule read_singlecell: read, check and join the configured single-cell sources."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.data.singlecell.read import read_singlecell
from deepexpr.io import write_h5ad
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    adata = read_singlecell(snakemake.params.sources, snakemake.params.obs_columns, gene_join=snakemake.params.gene_join)
    adata.uns["deepexpr"]["dataset"] = snakemake.wildcards.dataset
    log.info("read %d cells x %d genes", adata.n_obs, adata.n_vars)
    write_h5ad(adata, snakemake.output.adata)
