"""Rule umap: 2-D UMAP coordinates of every run's embedding, for the before/after figures."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.io import write_table
from deepexpr.evaluate.integration import read_runs, umap_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    runs = read_runs(snakemake.input.runs)
    write_table(umap_table(runs, seed=snakemake.params.seed), snakemake.output.table)
