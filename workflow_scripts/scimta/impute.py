"""Rule scimta_impute: low-rank imputation (ALRA-like) of the prepared data (log-normalised HVGs)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.evaluate.scimta import _log_normalised, _registered_counts
from deepexpr.io import write_h5ad
from deepexpr.models.scimta.impute import low_rank_impute
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as logger:
    prepared = ad.read_h5ad(snakemake.input.adata)
    counts, library = _registered_counts(prepared, "counts")
    variant = snakemake.params.variant
    imputed, rank = low_rank_impute(_log_normalised(counts, library), variant, rank=snakemake.params.rank, seed=snakemake.params.seed)
    logger.info("%s imputation at rank %d", variant, rank)
    result = ad.AnnData(X=imputed.astype("float32"), obs=prepared.obs.copy(), var=prepared.var.copy())
    result.uns["imputation"] = {"variant": variant, "rank": int(rank)}
    write_h5ad(result, snakemake.output.adata)
