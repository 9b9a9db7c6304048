"""Rule sivae_truth: neighbourhood precision@k against the planted modules and hub AUROC, every method."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.evaluate.sivae import truth_table
from deepexpr.genes import read_gene_table
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    truth_var = ad.read_h5ad(snakemake.input.truth).var
    genes = {name: read_gene_table(path) for name, path in snakemake.input.items() if name != "truth"}
    table = truth_table(genes, truth_var, k=snakemake.params.k)
    log.info("against the planted modules:\n%s", table.to_string())
    write_table(table, snakemake.output.table)
