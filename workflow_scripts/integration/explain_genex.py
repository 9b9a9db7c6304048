"""Rule explain_genex: Integrated Gradients on the GENEX critic's head of one covariate, ranked genes.

On simulated data the ranking is scored against the genes the simulated effect touched
(truth column `<covariate>_affected`).
"""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import torch

from deepexpr.interpret.attribution import attribution_auroc, explain_summary, rank_genes
from deepexpr.interpret.genex import explain_covariate
from deepexpr.io import write_json, write_table
from deepexpr.models.genex import GENEX
from deepexpr.workflow import rule_log

settings = snakemake.params.settings
covariate = snakemake.wildcards.covariate
with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    adata = ad.read_h5ad(snakemake.input.adata)
    model = GENEX.load(snakemake.input.model, adata)
    cells, attributions = explain_covariate(
        model,
        covariate,
        baseline=settings["baseline"],
        n_steps=settings["n_steps"],
        max_cells=settings["max_cells"],
        seed=snakemake.params.seed,
        reference_level=settings["reference_level"] or None,
    )
    obs = cells.set_index("cell").join(adata.obs[["cell_type"]])
    ranked = rank_genes(attributions, obs, covariate, adata.var_names, level_key="level")
    summary = {covariate: explain_summary(cells, settings["baseline"], settings["n_steps"])}
    if snakemake.input.truth:
        affected = ad.read_h5ad(snakemake.input.truth[0]).var[f"{covariate}_affected"]
        summary[covariate]["auroc_vs_truth"] = attribution_auroc(ranked, affected)
    write_table(ranked, snakemake.output.genes)
    write_table(cells, snakemake.output.cells)
    write_json(summary, snakemake.output.summary)
