# Study integration: GENEX batch correction beside the baselines of deepexpr.registry
# (unintegrated, ComBat, Harmony, Scanorama, scVI) on single-cell data: training, correction and
# explanation of GENEX, scIB, metrics against the simulated truth, UMAPs, value distributions,
# Wilcoxon and pseudobulk DE on corrected values, and every single-cell figure. Helpers: rules/helpers/integration.smk.


include: "helpers/integration.smk"


# ------------------------------------------------------------------ batch correction
rule integrate_baseline:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        adata="results/{dataset}/integration/{baseline}.h5ad",
    log:
        "logs/{dataset}/integrate/{baseline}.log",
    benchmark:
        "benchmarks/{dataset}/integrate/{baseline}.tsv"
    wildcard_constraints:
        baseline="|".join(map(re.escape, baseline_methods())),
    conda:
        "../envs/singlecell.yaml"
    threads: config["threads"]
    params:
        seed=config["seed"],
        # a baseline's own config block (harmony: max_iter); the others have none
        settings=lambda wildcards: DATASETS[wildcards.dataset].get(
            wildcards.baseline, {}
        ),
    script:
        "../workflow_scripts/integration/integrate_baseline.py"


rule train_scvi:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        adata="results/{dataset}/integration/scvi_{mode}_seed{seed}.h5ad",
    log:
        "logs/{dataset}/train_scvi/{mode}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/train_scvi/{mode}_seed{seed}.tsv"
    wildcard_constraints:
        mode="|".join(SCVI_MODE_DEFAULTS),
    conda:
        "../envs/scvi.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        settings=lambda wildcards: scvi_settings(
            DATASETS[wildcards.dataset]["scvi"], wildcards.mode
        ),
        device=config["device"],
    script:
        "../workflow_scripts/integration/train_scvi.py"


rule train_genex:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        model="results/{dataset}/models/genex/{mode}/seed{seed}/model.pt",
        history="results/{dataset}/models/genex/{mode}/seed{seed}/history.tsv",
    log:
        "logs/{dataset}/train_genex/{mode}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/train_genex/{mode}_seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        settings=genex_model_settings,
        checkpoint_every=lambda wildcards: DATASETS[wildcards.dataset]["genex"][
            "checkpoint_every"
        ],
        explain_keys=lambda wildcards: DATASETS[wildcards.dataset]["explain"][
            "covariates"
        ],
        # Kept outside the outputs so a killed run resumes from here instead of starting over.
        checkpoint_dir=lambda wildcards: f"results/{wildcards.dataset}/models/genex/{wildcards.mode}/seed{wildcards.seed}/checkpoints",
        device=config["device"],
    script:
        "../workflow_scripts/integration/train_genex.py"


# Inference with a trained GENEX model runs on the CPU: GENEX.load maps the weights to the CPU and
# neither this rule nor explain_genex moves them (no `device`), so they need no GPU slot.
rule correct_genex:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
        model="results/{dataset}/models/genex/{mode}/seed{seed}/model.pt",
    output:
        adata="results/{dataset}/integration/genex_{mode}_seed{seed}.h5ad",
    log:
        "logs/{dataset}/integrate/genex_{mode}_seed{seed}.log",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    script:
        "../workflow_scripts/integration/correct_genex.py"


rule explain_genex:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
        model=explain_model,
        truth=lambda wildcards: simulated_only(
            wildcards, "results/{dataset}/data/truth.h5ad"
        ),
    output:
        genes="results/{dataset}/explain/{covariate}.tsv",
        cells="results/{dataset}/explain/{covariate}_cells.tsv.gz",
        summary="results/{dataset}/explain/{covariate}_summary.json",
    log:
        "logs/{dataset}/explain/{covariate}.log",
    benchmark:
        "benchmarks/{dataset}/explain/{covariate}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    params:
        settings=lambda wildcards: DATASETS[wildcards.dataset]["explain"],
        seed=config["seed"],
    script:
        "../workflow_scripts/integration/explain_genex.py"


# ------------------------------------------------------------------ evaluation
rule scib:
    input:
        runs=lambda wildcards: run_files(
            wildcards, "results/{dataset}/integration/{run}.h5ad"
        ),
        # Simulated data: the batch-free truth is scored too, as a reference row.
        truth=lambda wildcards: simulated_only(
            wildcards, "results/{dataset}/data/truth.h5ad"
        ),
        prepared=lambda wildcards: simulated_only(
            wildcards, "results/{dataset}/data/prepared.h5ad"
        ),
    output:
        table=report(
            "results/{dataset}/integration/scib.tsv",
            caption=f"{REPORT_CAPTIONS}/scib_tsv.rst",
            category="{dataset}",
            subcategory="Tables",
            labels={"table": "scIB metrics"},
        ),
        summary="results/{dataset}/integration/scib_seeds.tsv",
    log:
        "logs/{dataset}/scib.log",
    benchmark:
        "benchmarks/{dataset}/scib.tsv"
    conda:
        "../envs/scib.yaml"
    threads: config["threads"]
    params:
        seed=config["seed"],
    script:
        "../workflow_scripts/integration/scib.py"


rule truth_metrics:
    input:
        runs=lambda wildcards: full_run_files(
            wildcards, "results/{dataset}/integration/{run}.h5ad"
        ),
        truth="results/{dataset}/data/truth.h5ad",
        prepared="results/{dataset}/data/prepared.h5ad",
    output:
        summary=report(
            "results/{dataset}/integration/truth.tsv",
            caption=f"{REPORT_CAPTIONS}/truth_tsv.rst",
            category="{dataset}",
            subcategory="Tables",
            labels={"table": "vs truth"},
        ),
        seeds="results/{dataset}/integration/truth_seeds.tsv",
        genes="results/{dataset}/integration/truth_genes.tsv.gz",
        sample="results/{dataset}/integration/truth_sample.tsv.gz",
    log:
        "logs/{dataset}/truth_metrics.log",
    benchmark:
        "benchmarks/{dataset}/truth_metrics.tsv"
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    params:
        seed=config["seed"],
    script:
        "../workflow_scripts/integration/truth_metrics.py"


rule umap:
    input:
        runs=lambda wildcards: run_files(
            wildcards, "results/{dataset}/integration/{run}.h5ad"
        ),
    output:
        table="results/{dataset}/integration/umap.tsv.gz",
    log:
        "logs/{dataset}/umap.log",
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    params:
        seed=config["seed"],
    script:
        "../workflow_scripts/integration/umap.py"


rule value_distribution:
    input:
        runs=lambda wildcards: full_run_files(
            wildcards, "results/{dataset}/integration/{run}.h5ad"
        ),
    output:
        histogram="results/{dataset}/integration/values.tsv",
        summary="results/{dataset}/integration/values_summary.tsv",
    log:
        "logs/{dataset}/value_distribution.log",
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    script:
        "../workflow_scripts/integration/value_distribution.py"


# ------------------------------------------------------------------ DE on corrected values
rule wilcoxon_corrected:
    input:
        adata="results/{dataset}/integration/{run}.h5ad",
    output:
        table="results/{dataset}/de/wilcoxon_{run}.tsv",
    log:
        "logs/{dataset}/wilcoxon/{run}.log",
    benchmark:
        "benchmarks/{dataset}/wilcoxon/{run}.tsv"
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    script:
        "../workflow_scripts/integration/wilcoxon_corrected.py"


rule pseudobulk_corrected:
    input:
        adata="results/{dataset}/integration/{run}.h5ad",
        prepared="results/{dataset}/data/prepared.h5ad",
    output:
        table="results/{dataset}/de/pseudobulk_{run}.tsv",
    log:
        "logs/{dataset}/pseudobulk/{run}.log",
    benchmark:
        "benchmarks/{dataset}/pseudobulk/{run}.tsv"
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    params:
        settings=lambda wildcards: DATASETS[wildcards.dataset]["pseudobulk"],
    script:
        "../workflow_scripts/integration/pseudobulk_corrected.py"


# ------------------------------------------------------------------ figures
rule figure_scib_table:
    input:
        table="results/{dataset}/integration/scib.tsv",
    output:
        report(
            "results/{dataset}/figures/scib_table.png",
            caption=f"{REPORT_CAPTIONS}/scib_table.rst",
            category="{dataset}",
            subcategory="Batch correction",
        ),
    log:
        "logs/{dataset}/figures/scib_table.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/integration/figure_scib_table.py"


rule figure_umaps:
    input:
        table="results/{dataset}/integration/umap.tsv.gz",
    output:
        **{
            color: report(
                f"results/{{dataset}}/figures/umap_{color}.png",
                caption=f"{REPORT_CAPTIONS}/umap.rst",
                category="{dataset}",
                subcategory="Batch correction",
            )
            for color in ["batch", "cell_type"]
        },
    log:
        "logs/{dataset}/figures/umaps.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/integration/figure_umaps.py"


rule figure_value_histograms:
    input:
        histogram="results/{dataset}/integration/values.tsv",
        summary="results/{dataset}/integration/values_summary.tsv",
    output:
        report(
            "results/{dataset}/figures/value_histograms.png",
            caption=f"{REPORT_CAPTIONS}/value_histograms.rst",
            category="{dataset}",
            subcategory="Batch correction",
        ),
    log:
        "logs/{dataset}/figures/value_histograms.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/integration/figure_value_histograms.py"


rule figure_truth:
    input:
        summary="results/{dataset}/integration/truth.tsv",
        sample="results/{dataset}/integration/truth_sample.tsv.gz",
    output:
        **{
            name: report(
                f"results/{{dataset}}/figures/{name}.png",
                caption=f"{REPORT_CAPTIONS}/{name}.rst",
                category="{dataset}",
                subcategory="Batch correction vs truth",
            )
            for name in ["truth_scatter", "truth_metrics", "de_recovery"]
        },
    log:
        "logs/{dataset}/figures/truth.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/integration/figure_truth.py"


rule figure_explain:
    input:
        genes="results/{dataset}/explain/{covariate}.tsv",
        cells="results/{dataset}/explain/{covariate}_cells.tsv.gz",
        summary="results/{dataset}/explain/{covariate}_summary.json",
    output:
        **{
            kind: report(
                f"results/{{dataset}}/figures/explain_{{covariate}}_{kind}.png",
                caption=f"{REPORT_CAPTIONS}/explain_{kind}.rst",
                category="{dataset}",
                subcategory="GENEX explanation",
            )
            for kind in ["heatmap", "dotplot", "completeness"]
        },
    log:
        "logs/{dataset}/figures/explain_{covariate}.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        top_genes=lambda wildcards: DATASETS[wildcards.dataset]["explain"]["top_genes"],
    script:
        "../workflow_scripts/integration/figure_explain.py"


rule figure_genex_training:
    input:
        histories=lambda wildcards: expand(
            "results/{dataset}/models/genex/{mode}/seed{seed}/history.tsv",
            dataset=wildcards.dataset,
            mode=wildcards.mode,
            seed=DATASETS[wildcards.dataset]["genex"]["seeds"],
        ),
    output:
        report(
            "results/{dataset}/figures/genex_{mode}_loss.png",
            caption=f"{REPORT_CAPTIONS}/genex_loss.rst",
            category="{dataset}",
            subcategory="Training",
        ),
    log:
        "logs/{dataset}/figures/genex_{mode}_loss.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/integration/figure_genex_training.py"


# ------------------------------------------------------------------ benchmark scores with truth and seeds
rule biology_kept:
    input:
        tables=lambda wildcards: run_files(
            wildcards, "results/{dataset}/de/pseudobulk_{run}.tsv"
        ),
        scib="results/{dataset}/integration/scib.tsv",
        truth="results/{dataset}/data/truth.h5ad",
        prepared="results/{dataset}/data/prepared.h5ad",
    output:
        table=report(
            "results/{dataset}/integration/biology_kept.tsv",
            caption=f"{REPORT_CAPTIONS}/biology_kept.rst",
            category="{dataset}",
            subcategory="Tables",
            labels={"table": "biology kept"},
        ),
        seeds="results/{dataset}/integration/biology_kept_seeds.tsv",
    log:
        "logs/{dataset}/biology_kept.log",
    benchmark:
        "benchmarks/{dataset}/biology_kept.tsv"
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    script:
        "../workflow_scripts/integration/biology_kept.py"


rule explain_baseline:
    input:
        prepared="results/{dataset}/data/prepared.h5ad",
        truth="results/{dataset}/data/truth.h5ad",
        summaries=lambda wildcards: expand(
            "results/{dataset}/explain/{covariate}_summary.json",
            dataset=wildcards.dataset,
            covariate=DATASETS[wildcards.dataset]["explain"]["covariates"],
        ),
    output:
        auroc="results/{dataset}/explain/baseline/auroc.tsv",
        genes="results/{dataset}/explain/baseline/wilcoxon_genes.tsv.gz",
    log:
        "logs/{dataset}/explain/baseline.log",
    benchmark:
        "benchmarks/{dataset}/explain/baseline.tsv"
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    params:
        covariates=lambda wildcards: DATASETS[wildcards.dataset]["explain"][
            "covariates"
        ],
    script:
        "../workflow_scripts/integration/explain_baseline.py"


rule figure_benchmark:
    input:
        table=lambda wildcards: {
            "scib_seeds": "results/{dataset}/integration/scib.tsv",
            "biology_kept": "results/{dataset}/integration/biology_kept.tsv",
            "explain_auroc": "results/{dataset}/explain/baseline/auroc.tsv",
        }[wildcards.figure],
    output:
        report(
            "results/{dataset}/figures/{figure}.png",
            # One caption for the three figures (a caption path cannot hold a wildcard).
            caption=f"{REPORT_CAPTIONS}/benchmark_figure.rst",
            category="{dataset}",
            subcategory="Benchmark with truth and seeds",
        ),
    log:
        "logs/{dataset}/figures/{figure}.log",
    wildcard_constraints:
        figure="scib_seeds|biology_kept|explain_auroc",
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        figure=lambda wildcards: wildcards.figure,
    script:
        "../workflow_scripts/integration/figure_benchmark.py"
