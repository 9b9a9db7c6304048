"""Rule figure_generain_binning: value -> bin per gene, and bins of the training path (the binned
memmap) against the new-sample path (bin_new_samples with the stored boundaries) for the same samples."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import numpy as np

from deepexpr.data.archs4.prepare import new_sample_agreement
from deepexpr.io import write_table
from deepexpr.plots.generain import plot_binning
from deepexpr.workflow import rule_log

N_GENES_SHOWN = 5

with rule_log(snakemake.log[0]) as log:
    values, training, agreement = new_sample_agreement(snakemake.input.archs4, snakemake.input.binned)
    write_table(agreement.rename_axis("gene").reset_index(), snakemake.output.agreement)
    # Genes spread over the range of bin variability, most variable first.
    variable = training.std(axis=0).sort_values(ascending=False).index
    shown = list(variable[:: max(1, len(variable) // N_GENES_SHOWN)][:N_GENES_SHOWN])
    log.info("mean agreement %.4f over %d samples", float(np.nanmean(agreement)), len(training))
    plot_binning(
        values[shown], training[shown], agreement.dropna(), snakemake.output.figure,
        dataset=snakemake.wildcards.dataset, mode=snakemake.wildcards.mode,
    )  # fmt: skip
