"""Rule explain_baseline: a plain per-gene Wilcoxon test between the levels of each explained covariate,
beside the Integrated-Gradients attributions of the GENEX critic: both scored by AUROC for the genes the
simulated effect touched (truth column `<covariate>_affected`)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")

import anndata as ad
import pandas as pd

from deepexpr.evaluate.benchmark import wilcoxon_gene_scores
from deepexpr.interpret.attribution import attribution_auroc
from deepexpr.io import read_json, write_table
from deepexpr.workflow import rule_log

with rule_log(snakemake.log[0]) as log:
    prepared = ad.read_h5ad(snakemake.input.prepared)
    truth = ad.read_h5ad(snakemake.input.truth, backed="r")
    rows, genes = [], []
    for covariate, summary_path in zip(snakemake.params.covariates, snakemake.input.summaries):
        column = f"{covariate}_affected"
        if column not in truth.var:
            raise KeyError(f"{snakemake.input.truth}: var has no {column!r} column (the simulated truth of {covariate})")
        scores = wilcoxon_gene_scores(prepared.X, prepared.obs[covariate], prepared.var_names)
        wilcoxon = attribution_auroc(scores, truth.var[column])
        integrated = read_json(summary_path)[covariate]["auroc_vs_truth"]
        rows += [
            {"covariate": covariate, "method": "integrated_gradients", "auroc": integrated},
            {"covariate": covariate, "method": "wilcoxon", "auroc": wilcoxon},
        ]
        genes.append(pd.DataFrame({"covariate": covariate, "gene": scores.index, "wilcoxon_max_abs_z": scores.to_numpy()}))
        log.info("%s: AUROC Integrated Gradients %.3f, Wilcoxon %.3f", covariate, integrated, wilcoxon)
    write_table(pd.DataFrame(rows), snakemake.output.auroc)
    write_table(pd.concat(genes), snakemake.output.genes)
