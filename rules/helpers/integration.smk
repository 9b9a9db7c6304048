# Helpers of study integration (input functions, target list), included by rules/integration.smk.

from deepexpr.integration.baselines import SCVI_MODE_DEFAULTS, scvi_settings
from deepexpr.registry import (
    INTEGRATION_METHODS,
    REFERENCE_METHOD,
    baseline_methods,
    has_full_output,
    run_names,
    run_pattern,
)


wildcard_constraints:
    run=run_pattern(),
    covariate="[A-Za-z0-9_]+",


def integration_runs(dataset):
    """Every batch-correction run of a dataset in the registry's order; the reference method
    (unintegrated) is always there. A method with modes runs once per mode and seed of its block.
    """
    spec = DATASETS[dataset]
    runs = []
    for name in INTEGRATION_METHODS:
        if name == REFERENCE_METHOD or name in spec["methods"]:
            block = spec.get(name, {})
            runs += run_names(name, block.get("modes", ()), block.get("seeds", ()))
    return runs


def full_output_runs(dataset):
    """The runs that write corrected values (scored against the truth, used for DE)."""
    return [run for run in integration_runs(dataset) if has_full_output(run)]


def run_files(wildcards, pattern):
    return [
        pattern.format(dataset=wildcards.dataset, run=run)
        for run in integration_runs(wildcards.dataset)
    ]


def full_run_files(wildcards, pattern):
    return [
        pattern.format(dataset=wildcards.dataset, run=run)
        for run in full_output_runs(wildcards.dataset)
    ]


def runs_genex(dataset):
    return "genex" in DATASETS[dataset]["methods"]


def genex_model_settings(wildcards):
    """The GENEX model settings of a dataset (the block without the workflow-only keys)."""
    return model_settings(DATASETS[wildcards.dataset]["genex"])


def primary_genex(dataset):
    """(mode, seed) of the GENEX model that is explained: corrected if run, and the first seed."""
    genex = DATASETS[dataset]["genex"]
    mode = "corrected" if "corrected" in genex["modes"] else genex["modes"][0]
    return mode, genex["seeds"][0]


def explain_model(wildcards):
    mode, seed = primary_genex(wildcards.dataset)
    return f"{RESULTS}/{wildcards.dataset}/models/genex/{mode}/seed{seed}/model.pt"


def integration_targets(dataset):
    """Every table and figure a user reads for one single-cell dataset."""
    spec = DATASETS[dataset]
    base = f"{RESULTS}/{dataset}"
    figures = ["scib_table", "umap_batch", "umap_cell_type", "value_histograms"]
    targets = [f"{base}/integration/scib.tsv"]
    targets += expand(
        "{base}/de/wilcoxon_{run}.tsv", base=base, run=full_output_runs(dataset)
    )
    figures.append("scib_seeds")
    if "pseudobulk" in spec:
        # every run, embedding-only ones through their neighbourhood means (biology kept)
        targets += expand(
            "{base}/de/pseudobulk_{run}.tsv", base=base, run=integration_runs(dataset)
        )
    if is_simulated(dataset):
        targets.append(f"{base}/integration/truth.tsv")
        figures += ["truth_scatter", "truth_metrics", "de_recovery"]
    if is_simulated(dataset) and "pseudobulk" in spec:
        targets.append(f"{base}/integration/biology_kept.tsv")
        figures.append("biology_kept")
    if is_simulated(dataset) and runs_genex(dataset):
        targets.append(f"{base}/explain/baseline/auroc.tsv")
        figures.append("explain_auroc")
    if runs_genex(dataset):
        targets += expand(
            "{base}/explain/{covariate}.tsv",
            base=base,
            covariate=spec["explain"]["covariates"],
        )
        figures += expand(
            "explain_{covariate}_{kind}",
            covariate=spec["explain"]["covariates"],
            kind=["heatmap", "dotplot", "completeness"],
        )
        figures += [f"genex_{mode}_loss" for mode in spec["genex"]["modes"]]
    targets += expand("{base}/figures/{figure}.png", base=base, figure=figures)
    return targets


register_targets("singlecell", integration_targets)
