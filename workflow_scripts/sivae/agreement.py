"""Rule sivae_agreement: |Spearman| of siVAE's loadings with every other method's, per latent
dimension (dimensions matched one to one), with the time each method took."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import pandas as pd

from deepexpr.genes import matched_loading_agreement
from deepexpr.io import read_json, read_table, write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    loadings = {name: read_table(path, index_col="gene") for name, path in snakemake.input.items()}
    reference_name = next(iter(loadings))  # siVAE, first seed
    reference = loadings[reference_name]
    frames = []
    for name, table in loadings.items():
        if name == reference_name:
            continue
        agreement = matched_loading_agreement(reference, table)
        timing = read_json(snakemake.input[name].removesuffix(".tsv") + ".json")
        agreement.insert(0, "method", name.partition("_seed")[0])
        agreement["seconds"] = timing["seconds"]
        agreement["timed"] = timing["what"]
        frames.append(agreement)
        log.info("%s: mean |Spearman| %.3f", name, agreement["abs_spearman"].mean())
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "reference", reference_name.partition("_seed")[0])
    table["reference_seconds"] = read_json(snakemake.input[reference_name].removesuffix(".tsv") + ".json")["seconds"]
    write_table(table, snakemake.output.table)
