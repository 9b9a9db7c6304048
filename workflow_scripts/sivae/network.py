"""Rule sivae_network: a gene network (|Pearson| or CLR mutual information); hubs by weighted degree."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import numpy as np
import scipy.sparse as sp

from deepexpr.genes import (
    correlation_network,
    mutual_information_network,
    network_neighbours,
    weighted_degree,
    write_gene_table,
)
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    settings = snakemake.params.settings
    adata = ad.read_h5ad(snakemake.input.adata)
    x = np.asarray(adata.X.toarray() if sp.issparse(adata.X) else adata.X, dtype=np.float64)
    genes = adata.var_names.astype(str)
    if snakemake.wildcards.network == "correlation":
        network = correlation_network(x, genes)
    else:
        network = mutual_information_network(x, genes, n_bins=settings["mi_bins"])
    log.info("%s network of %d genes", snakemake.wildcards.network, len(genes))
    write_gene_table(weighted_degree(network), network_neighbours(network, settings["k"]), snakemake.output.genes)
