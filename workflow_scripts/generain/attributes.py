"""Rule generain_attributes: the gene-attribute benchmark of every GeneRAIN embedding of one mode
beside random, SVD and co-expression baselines computed in the same run, with paired comparisons
(wins/losses, Wilcoxon signed-rank) and nearest-neighbour tables of chosen genes."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.evaluate.gene_attributes import benchmark, summarise, write_gene_sets
from deepexpr.evaluate.generain_benchmark import (
    baseline_embeddings,
    collect_gene_sets,
    models_vs_baselines,
    neighbour_tables,
    write_baselines,
)
from deepexpr.genes import read_embedding
from deepexpr.io import write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    settings, seed, inputs = snakemake.params.attributes, snakemake.params.seed, snakemake.input
    gene_sets = collect_gene_sets(
        inputs.simulated if "simulated" in inputs.keys() else None,
        {key[4:]: inputs[key] for key in inputs.keys() if key.startswith("gmt_")},
        {name: (inputs[f"list_{name}"], entry["column"]) for name, entry in snakemake.params.gene_lists.items()},
    )
    write_gene_sets(gene_sets, snakemake.output.gene_sets)
    models = list(snakemake.params.methods)
    embeddings = {name: read_embedding(path) for name, path in zip(models, inputs.embeddings)}
    baselines = baseline_embeddings(inputs.binned, next(iter(embeddings.values())).shape[1], settings["baseline_samples"], seed)
    write_baselines(baselines, snakemake.output.baselines)
    embeddings.update(baselines)
    scores = benchmark(embeddings, gene_sets, settings["n_folds"], settings["min_size"], settings["max_size"], seed)
    write_table(scores, snakemake.output.scores)
    write_table(summarise(scores), snakemake.output.summary)
    log.info("summary:\n%s", summarise(scores).to_string())
    write_table(models_vs_baselines(scores, models), snakemake.output.comparisons)
    neighbours = neighbour_tables(embeddings, gene_sets, scores["attribute"].unique(), settings["neighbour_genes"],
                                  settings["neighbour_attributes"])  # fmt: skip
    write_table(neighbours, snakemake.output.neighbours)
