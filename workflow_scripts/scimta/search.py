"""Rule scimta_search: label-free hyper-parameter search over the configured grid (C1)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.evaluate.scimta import search
from deepexpr.io import write_table
from deepexpr.models.scimta import SCIMTA
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    prepared = ad.read_h5ad(snakemake.input.adata)
    labels_key = "cell_type" if "cell_type" in prepared.obs else None
    batch_key = "batch" if "batch" in prepared.obs else None
    SCIMTA.setup_anndata(prepared, labels_key=labels_key, batch_key=batch_key)
    table = search(prepared, snakemake.params.settings, snakemake.params.space, snakemake.params.seed, snakemake.params.device, labels_key)
    write_table(table, snakemake.output.table)
