"""Rule scimta_train: train scIMTA on the prepared counts with the graph of rule scimta_graph; writes
the model, its history, the cells' z and clusters, and the gene communities."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import pandas as pd
import scipy.sparse as sp

from deepexpr.io import write_table
from deepexpr.models.scimta import SCIMTA
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]):
    prepared = ad.read_h5ad(snakemake.input.adata)
    labels_key = "cell_type" if "cell_type" in prepared.obs else None
    batch_key = "batch" if "batch" in prepared.obs else None
    SCIMTA.setup_anndata(prepared, labels_key=labels_key, batch_key=batch_key)
    model = SCIMTA(
        prepared,
        mode=snakemake.wildcards.mode,
        seed=int(snakemake.wildcards.seed),
        cell_graph=sp.load_npz(snakemake.input.graph),
        **snakemake.params.settings,
    )
    model.train(device=snakemake.params.device, checkpoint_dir=snakemake.params.checkpoint_dir)
    model.save(snakemake.output.model)
    write_table(model.history, snakemake.output.history)
    cells = model.get_latent()
    cells.insert(0, "cluster", model.predict().to_numpy())
    write_table(cells.rename_axis("cell").reset_index(), snakemake.output.cells)
    communities = model.gene_communities(snakemake.params.community_resolution)
    write_table(communities.rename_axis("gene").reset_index(), snakemake.output.communities)
