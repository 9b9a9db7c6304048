"""Rule scimta_graph: the kNN cell graph on PCA of the prepared data (sparse, symmetric)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import time

import anndata as ad
import scipy.sparse as sp

from deepexpr.evaluate.scimta import pca_embedding
from deepexpr.io import atomic_path
from deepexpr.models.scimta.graph import knn_graph
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as logger:
    settings = snakemake.params.settings
    prepared = ad.read_h5ad(snakemake.input.adata)
    started = time.perf_counter()
    pca = pca_embedding(prepared, settings.get("n_pcs") or 50, snakemake.params.seed)
    graph = knn_graph(pca, settings.get("k") or 15, settings.get("metric") or "euclidean", snakemake.params.seed)
    logger.info("kNN graph of %d cells, %d edges in %.1f s", graph.shape[0], graph.nnz // 2, time.perf_counter() - started)
    with atomic_path(snakemake.output.graph) as tmp:
        with open(tmp, "wb") as stream:
            sp.save_npz(stream, graph)
