"""Rule deseq2: pyDESeq2 for one contrast (Cook's filter on and off, shrunk LFCs)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.de.bulk import run_deseq2
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    adata = ad.read_h5ad(snakemake.input.adata)
    table = run_deseq2(adata, snakemake.params.contrast, n_cpus=snakemake.threads)
    log.info("%d genes tested, %d with padj < 0.05", len(table), (table["padj"] < 0.05).sum())
    write_table(table, snakemake.output.table)
