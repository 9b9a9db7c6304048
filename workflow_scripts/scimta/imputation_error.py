"""Rule scimta_imputation_error: observed vs imputed values against the simulated true counts."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.evaluate.scimta import imputation_table
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    prepared = ad.read_h5ad(snakemake.input.prepared)
    truth = ad.read_h5ad(snakemake.input.truth)
    table = imputation_table(prepared, truth, snakemake.params.mask_fractions, snakemake.params.depths, snakemake.params.rank, snakemake.params.seed)
    write_table(table, snakemake.output.table)
