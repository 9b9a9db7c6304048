"""Rule umap: 2-D UMAP coordinates of one run's embedding, for the before/after figures."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")

import anndata as ad

from deepexpr.io import write_table
from deepexpr.metrics.integration import umap_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    table = umap_table(ad.read_h5ad(snakemake.input.adata), seed=snakemake.params.seed)
    write_table(table, snakemake.output.table)
