"""Rule sivae_markers: the top-k neighbourhood of each configured marker gene, by every method."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.evaluate.sivae import marker_table
from deepexpr.genes import read_gene_table
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    genes = {name: read_gene_table(path) for name, path in snakemake.input.items()}
    table = marker_table(genes, snakemake.params.markers)
    absent = sorted(set(table.loc[~table["present"], "marker"]))
    if absent:
        log.info("markers not among the dataset's genes: %s", ", ".join(absent))
    write_table(table, snakemake.output.table)
