"""Rule sivae_knn: 5-fold kNN accuracy on the cell labels of each cell embedding (every seed, and the mean)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.evaluate.sivae import EMBEDDING_KEYS, knn_table, split_name
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    runs = {}
    for name, path in snakemake.input.items():
        run = ad.read_h5ad(path)
        runs[name] = (run.obsm[EMBEDDING_KEYS[split_name(name)[0]]], run.obs["cell_type"])
    table = knn_table(runs, seed=snakemake.params.seed)
    log.info("kNN accuracy:\n%s", table.to_string())
    write_table(table, snakemake.output.table)
