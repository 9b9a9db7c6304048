"""Rule bin_archs4: sample QC, split, gene universe, Binning-By-Gene boundaries and the binned memmap."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.data.archs4 import prepare_binned
from deepexpr.data.archs4.read import biotype_vocabulary
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    biotypes = snakemake.params.gene_biotypes
    vocabulary = biotype_vocabulary(snakemake.input.archs4, biotypes) if biotypes else None
    out = prepare_binned(
        snakemake.input.archs4,
        snakemake.output.binned,
        vocabulary=vocabulary,
        qc=snakemake.params.qc,
        max_samples=snakemake.params.max_samples,
        seed=snakemake.params.seed,
        **snakemake.params.binning,
    )
    log.info("binned into %s with %s", out, snakemake.params.binning)
