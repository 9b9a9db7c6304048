"""Rule sivae_agreement: |Spearman| of siVAE's loadings with every other method's, per latent
dimension (dimensions matched one to one), with the time each method took."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.evaluate.sivae import agreement_table
from deepexpr.io import read_json, read_table, write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    loadings = {name: read_table(path, index_col="gene") for name, path in snakemake.input.items()}
    # Each loadings file has its timing beside it (rule outputs "timing").
    seconds = {name: read_json(path.removesuffix(".tsv") + ".json")["seconds"] for name, path in snakemake.input.items()}
    table = agreement_table(loadings, seconds)
    log.info("mean |Spearman| per method:\n%s", table.groupby("method")["abs_spearman"].mean().to_string())
    write_table(table, snakemake.output.table)
