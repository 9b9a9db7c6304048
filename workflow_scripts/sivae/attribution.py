"""Rule sivae_attribution: loadings from Captum attributions (IG or saliency) of the plain VAE's decoder."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import time

import anndata as ad
import numpy as np
import torch

from deepexpr.genes import attribution_loadings, embedding_neighbours, loading_norm_hub_score, write_gene_table
from deepexpr.io import write_json, write_table
from deepexpr.models.sivae import SIVAE
from deepexpr.workflow import rule_log

METHODS = {"ig": "integrated_gradients", "saliency": "saliency"}

with rule_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    settings = snakemake.params.settings
    model = SIVAE.load(snakemake.input.model, ad.read_h5ad(snakemake.input.adata))
    z = model.cell_means()
    if settings["attribution_cells"] and settings["attribution_cells"] < len(z):  # seeded subsample
        keep = np.random.default_rng(snakemake.params.seed).choice(len(z), settings["attribution_cells"], replace=False)
        z = z[torch.as_tensor(np.sort(keep))]
    method, baseline, steps = METHODS[snakemake.wildcards.attribution], settings["attribution_baseline"], settings["attribution_steps"]
    started = time.perf_counter()
    loadings, gap = attribution_loadings(model.plain_decoder(), z, model.genes, method, baseline, steps)
    seconds = time.perf_counter() - started
    log.info("%s on %d cells: %.1f s, median completeness gap %s", method, len(z), seconds, gap)
    hubs = loading_norm_hub_score(loadings)
    write_gene_table(hubs, embedding_neighbours(loadings, settings["k"]), snakemake.output.genes)
    write_table(loadings.rename_axis("gene"), snakemake.output.loadings, index=True)
    timing = {"seconds": seconds, "what": "attribution", "n_cells": len(z), "median_completeness_gap": gap}
    write_json(timing, snakemake.output.timing)
