"""Rule pseudobulk_corrected: pyDESeq2 per cell type on donor pseudobulks (condition test vs reference).

The unintegrated run uses the raw counts; a correction's values are turned back into approximate counts.
"""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.de.singlecell import pseudobulk_deseq2
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

settings = snakemake.params.settings
run = snakemake.wildcards.run
with rule_log(snakemake.log[0]):
    prepared = ad.read_h5ad(snakemake.input.prepared)
    values = None if run == "unintegrated" else ad.read_h5ad(snakemake.input.adata).layers["corrected"]
    table = pseudobulk_deseq2(
        prepared,
        cell_type_key="cell_type",
        donor_key="donor",
        condition_key=settings["condition"],
        test=settings["test"],
        reference=settings["reference"],
        min_cells=settings["min_cells"],
        values=values,
        run=run,
    )
    write_table(table, snakemake.output.table)
