# Study bulk_de: NB-VAE generative differential expression beside pyDESeq2 on bulk RNA-seq.
# Training, pyDESeq2, generative DE, the DE comparison (and vs the truth on simulated data), the
# PCA baseline, gene-set enrichment, and every bulk figure. Helpers: rules/helpers/bulk_de.smk.


include: "helpers/bulk_de.smk"


# ------------------------------------------------------------------ NB-VAE training (GPU)
rule train_nbvae:
    input:
        unpack(nbvae_inputs),
    output:
        model="results/{dataset}/models/nbvae/{mode}/seed{seed}/model.pt",
        history="results/{dataset}/models/nbvae/{mode}/seed{seed}/history.tsv",
        latent="results/{dataset}/models/nbvae/{mode}/seed{seed}/latent.tsv",
        dispersion="results/{dataset}/models/nbvae/{mode}/seed{seed}/dispersion.tsv",
    log:
        "logs/{dataset}/train_nbvae/{mode}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/train_nbvae/{mode}_seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        settings=nbvae_model_settings,
        device=config["device"],
    script:
        "../workflow_scripts/bulk_de/train_nbvae.py"


# pyDESeq2's MAP dispersions on the dataset's design, only for `nbvae: {dispersion: deseq2}`.
rule deseq2_dispersions:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        table="results/{dataset}/models/deseq2_dispersions.tsv",
    log:
        "logs/{dataset}/deseq2_dispersions.log",
    benchmark:
        "benchmarks/{dataset}/deseq2_dispersions.tsv"
    conda:
        "../envs/deseq2.yaml"
    threads: config["threads"]
    params:
        columns=lambda wildcards: DATASETS[wildcards.dataset]["design_columns"],
    script:
        "../workflow_scripts/bulk_de/deseq2_dispersions.py"


# ------------------------------------------------------------------ differential expression
rule deseq2:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        table="results/{dataset}/de/{contrast}/deseq2.tsv",
    log:
        "logs/{dataset}/deseq2/{contrast}.log",
    benchmark:
        "benchmarks/{dataset}/deseq2/{contrast}.tsv"
    conda:
        "../envs/deseq2.yaml"
    threads: config["threads"]
    params:
        contrast=contrast_of,
    script:
        "../workflow_scripts/bulk_de/deseq2.py"


rule generative_de:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
        models=nbvae_models,
    output:
        table="results/{dataset}/de/{contrast}/{mode}/generative.tsv",
    log:
        "logs/{dataset}/generative_de/{contrast}_{mode}.log",
    benchmark:
        "benchmarks/{dataset}/generative_de/{contrast}_{mode}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    params:
        contrast=contrast_of,
        settings=lambda wildcards: nbvae_block(wildcards.dataset),
        statistic="replicate_error",
    script:
        "../workflow_scripts/bulk_de/generative_de.py"


# The same posterior draws, with the model's own NB noise instead of the replicates' error.
rule generative_de_predictive:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
        models=nbvae_models,
    output:
        table="results/{dataset}/de/{contrast}/{mode}/generative_posterior_predictive.tsv",
    log:
        "logs/{dataset}/generative_de_predictive/{contrast}_{mode}.log",
    benchmark:
        "benchmarks/{dataset}/generative_de_predictive/{contrast}_{mode}.tsv"
    wildcard_constraints:
        mode="corrected",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    params:
        contrast=contrast_of,
        settings=lambda wildcards: nbvae_block(wildcards.dataset),
        statistic="posterior_predictive",
    script:
        "../workflow_scripts/bulk_de/generative_de.py"


# pyDESeq2 and both generative statistics at nominal FDRs 1/5/10 % (calibration on simulated data).
rule de_statistics:
    input:
        unpack(de_statistics_inputs),
    output:
        table=report(
            "results/{dataset}/de/{contrast}/de_statistics.tsv",
            caption=f"{REPORT_CAPTIONS}/de_statistics.rst",
            category="{dataset}",
            subcategory="{contrast} tables",
            labels={"table": "DE statistics"},
        ),
    log:
        "logs/{dataset}/de_statistics/{contrast}.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        contrast=contrast_of,
    script:
        "../workflow_scripts/bulk_de/de_statistics.py"


# Learned NB-VAE and pyDESeq2 dispersions against the simulator's true dispersions.
rule dispersion_truth:
    input:
        truth="results/{dataset}/data/truth.tsv",
        deseq2="results/{dataset}/models/deseq2_dispersions.tsv",
        nbvae=corrected_dispersions,
    output:
        table=report(
            "results/{dataset}/models/nbvae/corrected/dispersion_vs_truth.tsv",
            caption=f"{REPORT_CAPTIONS}/dispersion_truth.rst",
            category="{dataset}",
            subcategory="Training",
        ),
    log:
        "logs/{dataset}/dispersion_truth.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/bulk_de/dispersion_truth.py"


# Cheap table work: runs where snakemake runs (as do the figure rules).
rule compare_de:
    input:
        unpack(truth_input),
        deseq2="results/{dataset}/de/{contrast}/deseq2.tsv",
        generative="results/{dataset}/de/{contrast}/{mode}/generative.tsv",
    output:
        comparison=report(
            "results/{dataset}/de/{contrast}/{mode}/comparison.tsv",
            caption=f"{REPORT_CAPTIONS}/comparison_table.rst",
            category="{dataset}",
            subcategory="{contrast} tables",
            labels={"table": "comparison", "mode": "{mode}"},
        ),
        summary=report(
            "results/{dataset}/de/{contrast}/{mode}/summary.json",
            caption=f"{REPORT_CAPTIONS}/summary_json.rst",
            category="{dataset}",
            subcategory="{contrast} tables",
            labels={"table": "summary", "mode": "{mode}"},
        ),
    log:
        "logs/{dataset}/compare_de/{contrast}_{mode}.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        contrast=contrast_of,
        settings=lambda wildcards: nbvae_block(wildcards.dataset),
    script:
        "../workflow_scripts/bulk_de/compare_de.py"


rule pca_baseline:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        latent="results/{dataset}/models/pca/latent.tsv",
    log:
        "logs/{dataset}/pca_baseline.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/bulk_de/pca_baseline.py"


# ------------------------------------------------------------------ enrichment
rule enrich:
    input:
        unpack(enrich_inputs),
    output:
        table="results/{dataset}/enrich/{contrast}/{method}_{collection}.tsv",
    log:
        "logs/{dataset}/enrich/{contrast}_{method}_{collection}.log",
    benchmark:
        "benchmarks/{dataset}/enrich/{contrast}_{method}_{collection}.tsv"
    conda:
        "../envs/enrich.yaml"
    threads: config["threads"]
    params:
        id_type=lambda wildcards: collections(wildcards.dataset)[wildcards.collection][
            "id_type"
        ],
        settings=lambda wildcards: DATASETS[wildcards.dataset]["enrich"],
        seed=config["seed"],
    script:
        "../workflow_scripts/bulk_de/enrich.py"


# ------------------------------------------------------------------ figures and report tables
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
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/bulk_de/figure_pca_latent.py"


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
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/bulk_de/figure_nbvae_training.py"


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
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        contrast=contrast_of,
    script:
        "../workflow_scripts/bulk_de/figure_deseq2_volcano.py"


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
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        contrast=contrast_of,
    script:
        "../workflow_scripts/bulk_de/figure_de_comparison.py"


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
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        contrast=contrast_of,
    script:
        "../workflow_scripts/bulk_de/figure_truth_curves.py"


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
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        contrast=contrast_of,
        top=lambda wildcards: DATASETS[wildcards.dataset]["enrich"]["top_terms"],
    script:
        "../workflow_scripts/bulk_de/figure_enrichment.py"
