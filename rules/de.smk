# Differential expression: pyDESeq2 and the NB-VAE's generative DE, one table per contrast.


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
        "../workflow_scripts/deseq2.py"


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
        settings=lambda wildcards: nbvae_settings(wildcards.dataset),
        device=config["device"],
    script:
        "../workflow_scripts/generative_de.py"


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
        "../workflow_scripts/wilcoxon_corrected.py"


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
        "../workflow_scripts/pseudobulk_corrected.py"
