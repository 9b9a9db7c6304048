"""Rule sivae_jaccard: mean Jaccard index of the top-k gene neighbourhoods of every pair of methods."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import pandas as pd

from deepexpr.genes import neighbourhood_jaccard, read_gene_table
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    neighbours = {name: read_gene_table(path)[0] for name, path in snakemake.input.items()}
    names = list(neighbours)
    rows = [
        {"method_a": a, "method_b": b, "jaccard": float(neighbourhood_jaccard(neighbours[a], neighbours[b]).mean())}
        for a in names
        for b in names
    ]
    write_table(pd.DataFrame(rows), snakemake.output.table)
