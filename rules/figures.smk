# Figures, drawn only from the tables the workflow wrote, each marked for `snakemake --report`.

REPORT_CAPTIONS = "../resources/report"


rule figure_pca_latent:
    input:
        latent="results/{dataset}/models/pca/latent.tsv",
    output:
        report(
            "results/{dataset}/figures/pca_latent.png",
            caption=f"{REPORT_CAPTIONS}/pca_latent.rst",
            category="{dataset}",
            subcategory="Latent space",
        ),
    log:
        "logs/{dataset}/figures/pca_latent.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/figure_pca_latent.py"


rule figure_nbvae_training:
    input:
        latents=lambda wildcards: nbvae_runs(wildcards, "latent.tsv"),
        histories=lambda wildcards: nbvae_runs(wildcards, "history.tsv"),
    output:
        latent=report(
            "results/{dataset}/figures/nbvae_{mode}_latent.png",
            caption=f"{REPORT_CAPTIONS}/latent.rst",
            category="{dataset}",
            subcategory="Latent space",
        ),
        loss=report(
            "results/{dataset}/figures/nbvae_{mode}_loss.png",
            caption=f"{REPORT_CAPTIONS}/loss.rst",
            category="{dataset}",
            subcategory="Training",
        ),
    log:
        "logs/{dataset}/figures/nbvae_{mode}.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/figure_nbvae_training.py"


rule figure_deseq2_volcano:
    input:
        table="results/{dataset}/de/{contrast}/deseq2.tsv",
    output:
        report(
            "results/{dataset}/figures/{contrast}/deseq2_volcano.png",
            caption=f"{REPORT_CAPTIONS}/deseq2_volcano.rst",
            category="{dataset}",
            subcategory="{contrast}",
        ),
    log:
        "logs/{dataset}/figures/{contrast}_deseq2_volcano.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        contrast=contrast_of,
    script:
        "../workflow_scripts/figure_deseq2_volcano.py"


rule figure_de_comparison:
    input:
        comparison="results/{dataset}/de/{contrast}/{mode}/comparison.tsv",
        generative="results/{dataset}/de/{contrast}/{mode}/generative.tsv",
    output:
        **{
            name: report(
                f"results/{{dataset}}/figures/{{contrast}}/{{mode}}_{name}.png",
                caption=f"{REPORT_CAPTIONS}/{name}.rst",
                category="{dataset}",
                subcategory="{contrast}",
            )
            for name in [
                "lfc_scatter",
                "generative_volcano",
                "na_genes",
                "seed_spread",
                "credible_intervals",
            ]
        },
    log:
        "logs/{dataset}/figures/{contrast}_{mode}_de_comparison.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        contrast=contrast_of,
    script:
        "../workflow_scripts/figure_de_comparison.py"


rule figure_truth_curves:
    input:
        comparison="results/{dataset}/de/{contrast}/{mode}/comparison.tsv",
    output:
        roc=report(
            "results/{dataset}/figures/{contrast}/{mode}_roc.png",
            caption=f"{REPORT_CAPTIONS}/roc.rst",
            category="{dataset}",
            subcategory="{contrast}",
        ),
        pr=report(
            "results/{dataset}/figures/{contrast}/{mode}_pr.png",
            caption=f"{REPORT_CAPTIONS}/pr.rst",
            category="{dataset}",
            subcategory="{contrast}",
        ),
    log:
        "logs/{dataset}/figures/{contrast}_{mode}_truth_curves.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        contrast=contrast_of,
    script:
        "../workflow_scripts/figure_truth_curves.py"


rule figure_enrichment:
    input:
        table="results/{dataset}/enrich/{contrast}/{method}_{collection}.tsv",
    output:
        **{
            analysis: report(
                f"results/{{dataset}}/figures/{{contrast}}/enrich_{{method}}_{{collection}}_{analysis}.png",
                caption=f"{REPORT_CAPTIONS}/enrichment.rst",
                category="{dataset}",
                subcategory="{contrast} enrichment",
            )
            for analysis in ["ora_up", "ora_down", "prerank"]
        },
    log:
        "logs/{dataset}/figures/{contrast}_enrich_{method}_{collection}.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        contrast=contrast_of,
        top=lambda wildcards: DATASETS[wildcards.dataset]["enrich"]["top_terms"],
    script:
        "../workflow_scripts/figure_enrichment.py"


# ------------------------------------------------------------------ single-cell batch correction
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
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/figure_scib_table.py"


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
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/figure_umaps.py"


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
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/figure_value_histograms.py"


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
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/figure_truth.py"


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
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        top_genes=lambda wildcards: DATASETS[wildcards.dataset]["explain"]["top_genes"],
    script:
        "../workflow_scripts/figure_explain.py"


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
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/figure_genex_training.py"
