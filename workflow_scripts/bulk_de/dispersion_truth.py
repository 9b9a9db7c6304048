"""Rule dispersion_truth: learned NB-VAE and pyDESeq2 dispersions against the simulator's truth."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import re

from deepexpr.evaluate.de import dispersion_truth_table
from deepexpr.io import read_table, write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    truth = read_table(snakemake.input.truth, dtype={"gene_id": str})
    estimates = {"deseq2_map": read_table(snakemake.input.deseq2, dtype={"gene_id": str}).set_index("gene_id")["dispersion"]}
    for path in snakemake.input.nbvae:
        seed = re.search(r"seed(\d+)", path)[1]
        table = read_table(path, dtype={"gene_id": str}).set_index("gene_id")
        estimates[f"nbvae_seed{seed}"] = table["dispersion"]
        if "nbvae_start" not in estimates:  # the start is the same for every seed
            estimates["nbvae_start"] = 1 / table["start_theta"]
    result = dispersion_truth_table(estimates, truth)
    log.info("\n%s", result.to_string())
    write_table(result, snakemake.output.table)
