"""Rule figure_generain_umap: UMAP of each GeneRAIN embedding, genes coloured by attribute."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

from deepexpr.enrich import read_gmt
from deepexpr.genes import read_embedding
from deepexpr.plots.generain import plot_embedding_umaps
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    plot_embedding_umaps(
        {name: read_embedding(path) for name, path in zip(snakemake.params.methods, snakemake.input.embeddings)},
        read_gmt(snakemake.input.gene_sets),
        snakemake.output[0],
        seed=snakemake.params.seed,
        dataset=snakemake.wildcards.dataset,
        mode=snakemake.wildcards.mode,
    )
