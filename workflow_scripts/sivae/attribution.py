"""Rule sivae_attribution: loadings from Captum attributions (IG or saliency) of the plain VAE's decoder."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import time

import anndata as ad
import numpy as np
import pandas as pd
import torch

from deepexpr.genes import attribution_loadings, embedding_neighbours, write_gene_table
from deepexpr.io import write_json, write_table
from deepexpr.models.sivae import SIVAE
from deepexpr.workflow import rule_log

METHODS = {"ig": "integrated_gradients", "saliency": "saliency"}

with rule_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    settings = snakemake.params.settings
    adata = ad.read_h5ad(snakemake.input.adata)
    model = SIVAE.load(snakemake.input.model, adata)
    z = model.cell_means()
    n_cells = settings["attribution_cells"]
    if n_cells and n_cells < len(z):
        rng = np.random.default_rng(snakemake.params.seed)
        z = z[torch.as_tensor(np.sort(rng.choice(len(z), n_cells, replace=False)))]
    method = METHODS[snakemake.wildcards.attribution]
    started = time.perf_counter()
    loadings, gap = attribution_loadings(
        model.plain_decoder(),
        z,
        model.genes,
        method=method,
        baseline=settings["attribution_baseline"],
        n_steps=settings["attribution_steps"],
    )
    seconds = time.perf_counter() - started
    log.info("%s on %d cells: %.1f s, median completeness gap %s", method, len(z), seconds, gap)
    hubs = pd.Series(np.linalg.norm(loadings.to_numpy(), axis=1), index=loadings.index)
    write_gene_table(hubs, embedding_neighbours(loadings, settings["k"]), snakemake.output.genes)
    write_table(loadings.rename_axis("gene"), snakemake.output.loadings, index=True)
    write_json(
        {"seconds": seconds, "what": "attribution", "n_cells": len(z), "median_completeness_gap": gap},
        snakemake.output.timing,
    )
