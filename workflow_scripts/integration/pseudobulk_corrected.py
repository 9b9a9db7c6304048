"""Rule pseudobulk_corrected: pyDESeq2 per cell type on donor pseudobulks (condition test vs reference).

The unintegrated run uses the raw counts; a correction's values are turned back into approximate counts.
A run with an embedding only (Harmony, Scanorama) gets values from it: each cell's log-normalised
expression averaged over its nearest neighbours in the embedding (deepexpr.evaluate.benchmark).
"""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.de.singlecell import pseudobulk_deseq2
from deepexpr.evaluate.benchmark import values_from_embedding
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

settings = snakemake.params.settings
run = snakemake.wildcards.run
with rule_log(snakemake.log[0]) as log:
    prepared = ad.read_h5ad(snakemake.input.prepared)
    values = None
    if run != "unintegrated":
        result = ad.read_h5ad(snakemake.input.adata)
        if "corrected" in result.layers:
            values = result.layers["corrected"]
        else:
            log.info("%s has no corrected values: using its embedding's neighbourhood means", run)
            values = values_from_embedding(result.obsm["X_emb"], prepared.X)
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
