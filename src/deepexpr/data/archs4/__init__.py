"""ARCHS4 bulk RNA-seq: the HDF5 reader (QC, duplicate symbols, series split), a simulator writing
the same schema, and Binning-By-Gene written out of core for GeneRAIN."""

from deepexpr.data.archs4.binning import (
    BinnedDataset,
    bin_new_samples,
    fit_boundaries,
    load_boundaries,
    rank_bins,
    save_boundaries,
    transform,
    write_binned,
)
from deepexpr.data.archs4.prepare import prepare_binned
from deepexpr.data.archs4.read import (
    Archs4File,
    GeneMap,
    gene_map,
    iter_sample_blocks,
    open_archs4,
    read_vocabulary,
    sample_qc,
    scale_log,
    split_samples,
)
from deepexpr.data.archs4.simulate import simulate_archs4

__all__ = [
    "Archs4File",
    "BinnedDataset",
    "bin_new_samples",
    "GeneMap",
    "fit_boundaries",
    "gene_map",
    "iter_sample_blocks",
    "load_boundaries",
    "open_archs4",
    "prepare_binned",
    "rank_bins",
    "read_vocabulary",
    "sample_qc",
    "save_boundaries",
    "scale_log",
    "simulate_archs4",
    "split_samples",
    "transform",
    "write_binned",
]
