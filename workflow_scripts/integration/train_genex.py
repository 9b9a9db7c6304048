"""Rule train_genex: train one GENEX model (one mode, one seed); resumes from its last checkpoint."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import torch

from deepexpr.io import write_table
from deepexpr.models.genex import GENEX
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    adata = ad.read_h5ad(snakemake.input.adata)
    GENEX.setup_anndata(adata, batch_key="batch", explain_keys=snakemake.params.explain_keys)
    model = GENEX(adata, mode=snakemake.wildcards.mode, seed=int(snakemake.wildcards.seed), **snakemake.params.settings)
    model.train(
        device=snakemake.params.device,
        checkpoint_dir=snakemake.params.checkpoint_dir,
        checkpoint_every=snakemake.params.checkpoint_every,
    )
    log.info("training: %s", model.training_info)
    model.save(snakemake.output.model)
    write_table(model.history, snakemake.output.history)
