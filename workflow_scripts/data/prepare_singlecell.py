"""Rule prepare_singlecell: QC, normalize_total + log1p, highly variable genes (and marker labels)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.data.singlecell.prepare import prepare_singlecell
from deepexpr.io import read_table, write_h5ad
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    markers = read_table(snakemake.input.markers) if "markers" in snakemake.input.keys() else None
    prepared = prepare_singlecell(
        ad.read_h5ad(snakemake.input.adata),
        snakemake.params.settings,
        dataset=snakemake.wildcards.dataset,
        seed=snakemake.params.seed,
        source=snakemake.input.adata,
        markers=markers,
    )
    write_h5ad(prepared, snakemake.output.adata)
