"""Rule umap: 2-D UMAP coordinates of every run's embedding, for the before/after figures."""

import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/../src")

import anndata as ad

from deepexpr.io import write_table
from deepexpr.metrics.integration import umap_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    runs = {Path(path).stem: ad.read_h5ad(path) for path in snakemake.input.runs}
    write_table(umap_table(runs, seed=snakemake.params.seed), snakemake.output.table)
