"""Rule sivae_knn: 5-fold kNN accuracy on the cell labels of each cell embedding (every seed, and the mean)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import pandas as pd

from deepexpr.evaluate.cell_embedding import knn_accuracy
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

# siVAE-0 is a siVAE run: its cell embedding has siVAE's key.
EMBEDDING_KEYS = {"sivae0": "X_sivae"}

with rule_log(snakemake.log[0]) as log:
    rows = []
    for name, path in snakemake.input.items():
        run = ad.read_h5ad(path)
        method, _, seed = name.partition("_seed")
        embedding = run.obsm[EMBEDDING_KEYS.get(method, f"X_{method}")]
        accuracy = knn_accuracy(embedding, run.obs["cell_type"], seed=snakemake.params.seed)
        rows.append({"method": method, "seed": seed or "-", "knn_accuracy": accuracy})
        log.info("%s: %.4f", name, accuracy)
    table = pd.DataFrame(rows)
    means = table.groupby("method", sort=False)["knn_accuracy"].agg(["mean", "size"])
    seeded = means[means["size"] > 1].reset_index()
    table = pd.concat(
        [table, pd.DataFrame({"method": seeded["method"], "seed": "mean", "knn_accuracy": seeded["mean"]})],
        ignore_index=True,
    )
    write_table(table, snakemake.output.table)
