"""Rule generain_attributes: the gene-attribute benchmark of every GeneRAIN embedding of one mode
beside random, SVD and co-expression baselines computed in the same run, with paired comparisons
(wins/losses, Wilcoxon signed-rank) and nearest-neighbour tables of chosen genes."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from pathlib import Path

import numpy as np
import pandas as pd

from deepexpr.data.archs4 import BinnedDataset
from deepexpr.data.archs4.simulate import module_gene_sets
from deepexpr.enrich import read_gmt
from deepexpr.evaluate.gene_attributes import (
    benchmark,
    compare_embeddings,
    read_gene_list,
    summarise,
    write_gene_sets,
)
from deepexpr.genes import coexpression_embedding, random_embedding, read_embedding, svd_embedding, write_embedding
from deepexpr.io import read_table, write_table
from deepexpr.plots.generain import nearest_neighbours
from deepexpr.workflow import rule_log

BASELINES = ("random", "svd", "coexpression")

with rule_log(snakemake.log[0]) as log:
    settings, seed = snakemake.params.attributes, snakemake.params.seed
    gene_sets = {}
    if "simulated" in snakemake.input.keys():
        gene_sets.update(module_gene_sets(read_table(snakemake.input.simulated)))
    for key in snakemake.input.keys():
        if key.startswith("gmt_"):
            gene_sets.update({f"{key[4:]}:{term}": genes for term, genes in read_gmt(snakemake.input[key]).items()})
    for name, entry in snakemake.params.gene_lists.items():
        gene_sets[name] = read_gene_list(snakemake.input[f"list_{name}"], entry.get("column"))
    write_gene_sets(gene_sets, snakemake.output.gene_sets)

    embeddings = {name: read_embedding(path) for name, path in zip(snakemake.params.methods, snakemake.input.embeddings)}
    dim = next(iter(embeddings.values())).shape[1]
    # Baselines on (up to baseline_samples evenly spaced) training rows of the binned matrix.
    train = BinnedDataset(snakemake.input.binned, split="train")
    rows = np.unique(np.linspace(0, len(train) - 1, min(len(train), settings["baseline_samples"])).astype(np.int64))
    matrix = np.asarray(train.bins[train.rows[rows]], dtype=np.float64)
    baselines = {
        "random": random_embedding(train.genes, dim, seed),
        "svd": svd_embedding(matrix, train.genes, dim, seed),
        "coexpression": coexpression_embedding(matrix, train.genes, dim),
    }
    Path(snakemake.output.baselines).mkdir(parents=True, exist_ok=True)
    for name, embedding in baselines.items():
        write_embedding(embedding, Path(snakemake.output.baselines) / f"{name}.tsv")
    embeddings.update(baselines)

    scores = benchmark(
        embeddings, gene_sets, n_folds=settings["n_folds"], min_size=settings["min_size"],
        max_size=settings["max_size"], seed=seed,
    )  # fmt: skip
    write_table(scores, snakemake.output.scores)
    summary = summarise(scores)
    write_table(summary, snakemake.output.summary)
    log.info("summary:\n%s", summary.to_string())
    models = list(snakemake.params.methods)
    comparisons = [
        compare_embeddings(scores, model, baseline, metric)
        for model in models
        for baseline in BASELINES
        for metric in ("roc_auc", "auprc")
    ]
    write_table(pd.DataFrame(comparisons), snakemake.output.comparisons)

    # Chosen genes: the configured ones, else the first gene of each of the largest scored attributes.
    chosen = list(settings["neighbour_genes"])
    if not chosen:
        scored = scores["attribute"].unique()
        largest = sorted(scored, key=lambda name: -len(gene_sets[name]))[: settings["neighbour_attributes"]]
        shared = embeddings[models[0]].index
        chosen = [sorted(shared.intersection(gene_sets[name]))[0] for name in largest]
    tables = [
        nearest_neighbours(embedding, [g for g in chosen if g in embedding.index]).assign(method=name)
        for name, embedding in embeddings.items()
    ]
    write_table(pd.concat(tables, ignore_index=True)[["method", "gene", "rank", "neighbour", "cosine"]],
                snakemake.output.neighbours)  # fmt: skip
