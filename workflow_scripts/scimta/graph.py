"""Rule scimta_graph: the kNN cell graph on PCA of the prepared data (sparse, symmetric), batch-balanced
when the mode's ``batch_graph`` is "balanced" and the data have two or more batches."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import time

import anndata as ad
import scipy.sparse as sp

from deepexpr.evaluate.scimta import pca_embedding
from deepexpr.io import atomic_path
from deepexpr.models.scimta import SCIMTA
from deepexpr.models.scimta.graph import knn_graph
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as logger:
    settings = SCIMTA.resolve_settings(snakemake.wildcards.mode, snakemake.params.settings)
    prepared = ad.read_h5ad(snakemake.input.adata)
    balanced = settings["batch_graph"] == "balanced" and "batch" in prepared.obs
    batches = prepared.obs["batch"].astype(str).to_numpy() if balanced else None
    started = time.perf_counter()
    pca = pca_embedding(prepared, settings["n_pcs"], snakemake.params.seed)
    graph = knn_graph(pca, settings["k"], settings["metric"], snakemake.params.seed, "prepared.h5ad PCA", batches)
    logger.info(
        "%skNN graph of %d cells, %d edges in %.1f s",
        "batch-balanced " if balanced else "", graph.shape[0], graph.nnz // 2, time.perf_counter() - started,
    )
    with atomic_path(snakemake.output.graph) as tmp:
        with open(tmp, "wb") as stream:
            sp.save_npz(stream, graph)
