"""Rule figure_generain_binning: value -> bin per gene, and bins of the training path (the binned
memmap) against the new-sample path (bin_new_samples with the stored boundaries) for the same samples."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from pathlib import Path

import numpy as np
import pandas as pd

from deepexpr.data.archs4 import BinnedDataset, bin_new_samples, gene_map, iter_sample_blocks, open_archs4, scale_log
from deepexpr.data.archs4.binning import load_boundaries
from deepexpr.io import write_table
from deepexpr.plots.generain import plot_binning
from deepexpr.workflow import rule_log

# Samples re-binned through the new-sample path: enough for a per-gene agreement, cheap at any scale.
N_CHECKED = 200
N_GENES_SHOWN = 5

with rule_log(snakemake.log[0]) as log:
    binned = BinnedDataset(snakemake.input.binned, split=None)
    boundary_file = Path(snakemake.input.binned) / "boundaries.npz"
    archs4 = open_archs4(snakemake.input.archs4)
    position = pd.Index(archs4.samples["geo_accession"])
    rows = np.unique(np.linspace(0, len(binned) - 1, min(len(binned), N_CHECKED)).astype(np.int64))
    columns = position.get_indexer(binned.samples["samples"].to_numpy()[rows])
    duplicates = "sum" if boundary_file.exists() else "max_mean"
    genes = gene_map(archs4, duplicates, vocabulary=list(binned.genes))
    counts = np.concatenate([genes.apply(c) for _, c in iter_sample_blocks(archs4.path, columns)], axis=1)
    order = np.argsort(np.argsort(columns))  # iter_sample_blocks reads columns in increasing order
    counts = pd.DataFrame(counts[:, order], index=genes.genes, columns=binned.samples["samples"].to_numpy()[rows])
    counts = counts.loc[list(binned.genes)]
    training = pd.DataFrame(np.asarray(binned.bins[rows]), index=counts.columns, columns=binned.genes)
    if boundary_file.exists():
        boundary_genes, _ = load_boundaries(boundary_file)
        new = bin_new_samples(counts, boundary_file)
        agreement = (new.to_numpy() == training.to_numpy()).mean(axis=0)
    else:  # faithful rank binning has no stored boundaries: new samples cannot be binned alike
        agreement = np.full(len(binned.genes), np.nan)
    agreement = pd.Series(agreement, index=binned.genes, name="agreement")
    write_table(agreement.rename_axis("gene").reset_index(), snakemake.output.agreement)
    values = pd.DataFrame(scale_log(counts.to_numpy(dtype=np.float64)).T, index=counts.columns, columns=counts.index)
    variable = training.std(axis=0).sort_values(ascending=False).index
    shown = list(variable[:: max(1, len(variable) // N_GENES_SHOWN)][:N_GENES_SHOWN])
    log.info("mean agreement %.4f over %d samples", float(np.nanmean(agreement)), len(rows))
    plot_binning(
        values[shown], training[shown], agreement.dropna(), snakemake.output.figure,
        dataset=snakemake.wildcards.dataset, mode=snakemake.wildcards.mode,
    )  # fmt: skip
