"""Rule correct_genex: corrected expression of every cell from a trained GENEX model."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import torch

from deepexpr.integration.baselines import finish_integration
from deepexpr.io import write_h5ad
from deepexpr.models.genex import GENEX
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    adata = ad.read_h5ad(snakemake.input.adata)
    model = GENEX.load(snakemake.input.model, adata)
    result = finish_integration(
        adata,
        "genex",
        corrected=model.get_corrected(),
        seconds=model.training_info["train_seconds"],
        params={**model.config, "training": model.training_info},
        seed=model.config["seed"],
        output="full",
    )
    write_h5ad(result, snakemake.output.adata)
