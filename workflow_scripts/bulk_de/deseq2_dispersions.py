"""Rule deseq2_dispersions: pyDESeq2's MAP dispersion of every gene on the dataset's design columns
(additive design), for the NB-VAE's `dispersion: deseq2`."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import numpy as np
import pandas as pd
from pydeseq2.dds import DeseqDataSet
from pydeseq2.default_inference import DefaultInference

from deepexpr.io import write_table
from deepexpr.workflow import rule_log

columns = list(snakemake.params.columns)
with rule_log(snakemake.log[0]) as log:
    adata = ad.read_h5ad(snakemake.input.adata)
    counts = pd.DataFrame(
        np.asarray(adata.layers["counts"], dtype=np.int64), index=adata.obs_names, columns=adata.var_names
    )
    metadata = adata.obs[columns].astype(str).astype("category")
    dds = DeseqDataSet(
        counts=counts,
        metadata=metadata,
        design="~" + " + ".join(columns),
        inference=DefaultInference(n_cpus=snakemake.threads),
        quiet=True,
    )
    dds.fit_size_factors()
    dds.fit_genewise_dispersions()
    dds.fit_dispersion_trend()
    dds.fit_dispersion_prior()
    dds.fit_MAP_dispersions()
    table = pd.DataFrame({"gene_id": counts.columns.astype(str), "dispersion": dds.var["MAP_dispersions"].to_numpy()})
    log.info("MAP dispersions of %d genes (design %s)", len(table), " + ".join(columns))
    write_table(table, snakemake.output.table)
