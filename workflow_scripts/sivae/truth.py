"""Rule sivae_truth: neighbourhood precision@k against the planted modules and hub AUROC, every method."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import pandas as pd

from deepexpr.evaluate.gene_modules import score_method
from deepexpr.genes import read_gene_table
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    truth = ad.read_h5ad(snakemake.input.truth)
    rows = []
    for name, path in snakemake.input.items():
        if name == "truth":
            continue
        neighbours, hubs = read_gene_table(path)
        # The prepared data keeps the highly variable genes only: score the planted genes it kept.
        truth_var = truth.var.loc[neighbours.index]
        row = score_method(name, neighbours, hubs, truth_var, k=snakemake.params.k)
        method, _, seed = name.partition("_seed")
        rows.append({**row, "method": method, "seed": seed or "-", "n_module_genes": int((truth_var["module"] >= 0).sum())})
        log.info("%s: precision@%d %.4f, hub AUROC %.4f", name, row["k"], row["precision"], row["hub_auroc"])
    table = pd.DataFrame(rows)
    seeded = table[table["seed"] != "-"].groupby("method", sort=False)
    means = seeded[["precision", "hub_auroc"]].mean().reset_index()
    means["seed"], means["k"] = "mean", snakemake.params.k
    means["n_module_genes"] = seeded["n_module_genes"].first().to_numpy()
    table = pd.concat([table, means], ignore_index=True)
    write_table(table[["method", "seed", "k", "precision", "hub_auroc", "n_module_genes"]], snakemake.output.table)
