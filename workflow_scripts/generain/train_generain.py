"""Rule train_generain: train one GeneRAIN variant (one mode, one seed) and export GeneRAIN-vec.

Resumes from its last checkpoint. The embedding is written as TSV and as word2vec text (the format
of the original's released GeneRAIN-vec.200d.txt.gz).
"""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import torch

from deepexpr.genes import write_embedding, write_word2vec
from deepexpr.io import write_table
from deepexpr.models.generain import GeneRAIN
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    wildcards = snakemake.wildcards
    model = GeneRAIN(
        snakemake.input.binned, variant=wildcards.variant, mode=wildcards.mode, seed=int(wildcards.seed),
        **snakemake.params.settings,
    )  # fmt: skip
    model.train(
        device=snakemake.params.device,
        checkpoint_dir=snakemake.params.checkpoint_dir,
        checkpoint_every=snakemake.params.checkpoint_every,
        progress_bar=False,
    )
    log.info("training: %s", model.training_info)
    model.save(snakemake.output.model)
    write_table(model.history, snakemake.output.history)
    embedding = model.get_gene_embedding()
    write_embedding(embedding, snakemake.output.embedding)
    write_word2vec(embedding, snakemake.output.word2vec)
