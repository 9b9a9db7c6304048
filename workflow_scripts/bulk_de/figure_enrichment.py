"""Rule figure_enrichment: dot plots of ORA (up, down) and prerank GSEA for one method and collection."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.plots.enrich import plot_enrichment_dots
from deepexpr.workflow import rule_log

titles = {
    "dataset": snakemake.wildcards.dataset,
    "label": snakemake.params.contrast["label"],
    "mode": f"{snakemake.wildcards.method}, {snakemake.wildcards.collection}",
}
with rule_log(snakemake.log[0]):
    for analysis, out in snakemake.output.items():
        plot_enrichment_dots(snakemake.input.table, out, analysis=analysis, top=snakemake.params.top, **titles)
