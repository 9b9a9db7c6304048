"""Rule wilcoxon_corrected: Wilcoxon DE of each cell type vs the rest on one run's corrected values."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.de.singlecell import wilcoxon_by_cell_type
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    table = wilcoxon_by_cell_type(ad.read_h5ad(snakemake.input.adata), snakemake.wildcards.run)
    write_table(table, snakemake.output.table)
