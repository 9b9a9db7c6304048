# Evaluation: generative vs pyDESeq2 (and vs the truth on simulated data), baseline embeddings.


rule compare_de:
    input:
        unpack(truth_input),
        deseq2="results/{dataset}/de/{contrast}/deseq2.tsv",
        generative="results/{dataset}/de/{contrast}/{mode}/generative.tsv",
    output:
        comparison="results/{dataset}/de/{contrast}/{mode}/comparison.tsv",
        summary="results/{dataset}/de/{contrast}/{mode}/summary.json",
    log:
        "logs/{dataset}/compare_de/{contrast}_{mode}.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        contrast=contrast_of,
        settings=lambda wildcards: nbvae_settings(wildcards.dataset),
    script:
        "../workflow_scripts/compare_de.py"


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
        "../workflow_scripts/pca_baseline.py"
