"""Rule de_statistics: pyDESeq2 and NB-VAE's generative DE statistics at nominal FDRs 1/5/10 %."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.evaluate.de import de_statistics_table
from deepexpr.io import read_table, write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    inputs = snakemake.input
    deseq2 = read_table(inputs.deseq2, dtype={"gene_id": str})
    generative = {
        f"nbvae_{name}": read_table(inputs[name], dtype={"gene_id": str})
        for name in ("replicate_error", "posterior_predictive")
        if name in inputs.keys()
    }
    truth = read_table(inputs.truth, dtype={"gene_id": str}) if "truth" in inputs.keys() else None
    table = de_statistics_table(deseq2, generative, truth, snakemake.params.contrast)
    for row in table.itertuples():
        log.info("%s at %.2f: %d called, observed FDR %s", row.method, row.nominal_fdr, row.n_called, getattr(row, "observed_fdr", "n/a"))
    write_table(table, snakemake.output.table)
