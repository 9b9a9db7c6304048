"""Rule enrich: ORA of up/down genes and prerank GSEA of one method's DE table."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.enrich import enrich_method_table, read_gmt
from deepexpr.io import read_table, write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    table = enrich_method_table(
        read_table(snakemake.input.table, dtype={"gene_id": str}),
        snakemake.wildcards.method,
        read_gmt(snakemake.input.gmt),
        snakemake.params.id_type,
        snakemake.params.settings,
        snakemake.params.seed,
        source=snakemake.input.table,
        threads=snakemake.threads,
    )
    write_table(table, snakemake.output.table)
