"""Rule sivae_jaccard: mean Jaccard index of the top-k gene neighbourhoods of every pair of methods."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.evaluate.sivae import jaccard_table
from deepexpr.genes import read_gene_table
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    neighbours = {name: read_gene_table(path)[0] for name, path in snakemake.input.items()}
    write_table(jaccard_table(neighbours), snakemake.output.table)
