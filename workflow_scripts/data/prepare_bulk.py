"""Rule prepare_bulk: raw counts + sample sheet (+ gene_info) -> prepared AnnData."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.data.bulk.prepare import prepare_bulk
from deepexpr.io import write_h5ad
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    adata = prepare_bulk(
        snakemake.params.dataset,
        snakemake.params.spec,
        counts_path=snakemake.input.counts,
        sample_sheet_path=snakemake.input.samples,
        gene_info_path=snakemake.input.get("gene_info"),
        seed=snakemake.config["seed"],
    )
    log.info("prepared %d samples x %d genes", adata.n_obs, adata.n_vars)
    write_h5ad(adata, snakemake.output.adata)
