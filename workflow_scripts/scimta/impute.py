"""Rule scimta_impute: ALRA-like low-rank imputation of the prepared data (log-normalised HVGs)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad

from deepexpr.evaluate.scimta import _log_normalised, _registered_counts
from deepexpr.io import write_h5ad
from deepexpr.models.scimta.impute import alra
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as logger:
    prepared = ad.read_h5ad(snakemake.input.adata)
    counts, library = _registered_counts(prepared, "counts")
    imputed, rank = alra(_log_normalised(counts, library), rank=snakemake.params.rank, seed=snakemake.params.seed)
    logger.info("ALRA rank %d", rank)
    result = ad.AnnData(X=imputed.astype("float32"), obs=prepared.obs.copy(), var=prepared.var.copy())
    result.uns["alra"] = {"rank": int(rank)}
    write_h5ad(result, snakemake.output.adata)
