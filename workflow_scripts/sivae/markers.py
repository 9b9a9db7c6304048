"""Rule sivae_markers: the top-k neighbourhood of each configured marker gene, by every method."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import pandas as pd

from deepexpr.genes import read_gene_table
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    rows = []
    for name, path in snakemake.input.items():
        neighbours, hubs = read_gene_table(path)
        ranks = hubs.rank(ascending=False)
        for marker in snakemake.params.markers:
            present = marker in neighbours.index
            rows.append(
                {
                    "marker": marker,
                    "method": name,
                    "present": present,
                    "hub_rank": int(ranks[marker]) if present else None,
                    "neighbours": ",".join(neighbours.loc[marker]) if present else "",
                }
            )
    table = pd.DataFrame(rows, columns=["marker", "method", "present", "hub_rank", "neighbours"])
    absent = sorted(set(table.loc[~table["present"], "marker"]))
    if absent:
        log.info("markers not among the dataset's genes: %s", ", ".join(absent))
    write_table(table, snakemake.output.table)
