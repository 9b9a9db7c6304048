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
