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
        table="results/{dataset}/integration/scib.tsv",
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
        "../workflow_scripts/scib.py"


rule truth_metrics:
    input:
        runs=lambda wildcards: full_run_files(
            wildcards, "results/{dataset}/integration/{run}.h5ad"
        ),
        truth="results/{dataset}/data/truth.h5ad",
        prepared="results/{dataset}/data/prepared.h5ad",
    output:
        summary="results/{dataset}/integration/truth.tsv",
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
        "../workflow_scripts/truth_metrics.py"


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
        "../workflow_scripts/umap.py"


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
        "../workflow_scripts/value_distribution.py"
