"""Rule compare_de: generative DE vs pyDESeq2 (and the truth) -> comparison.tsv, summary.json."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.evaluate.de import comparison_table, summarize
from deepexpr.io import read_table, write_json, write_table
from deepexpr.workflow import rule_log

settings, contrast = snakemake.params.settings, snakemake.params.contrast
with rule_log(snakemake.log[0]) as log:
    deseq2 = read_table(snakemake.input.deseq2, dtype={"gene_id": str})
    generative = read_table(snakemake.input.generative, dtype={"gene_id": str})
    truth = read_table(snakemake.input.truth, dtype={"gene_id": str}) if "truth" in snakemake.input.keys() else None
    comparison = comparison_table(deseq2, generative, truth, contrast)
    summary = summarize(
        comparison, deseq2, generative, contrast, snakemake.wildcards.mode, settings["delta"], settings["fdr_target"]
    )
    log.info("Pearson generative vs DESeq2 LFC: %.4f", summary["pearson_lfc"])
    write_table(comparison, snakemake.output.comparison)
    write_json(summary, snakemake.output.summary)
