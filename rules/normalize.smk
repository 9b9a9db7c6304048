# Read and validate raw inputs; bulk: filter genes, size factors, log-normalised expression;
# single cell: QC, normalize_total + log1p, highly variable genes (and marker labels if asked).


rule prepare_bulk:
    input:
        unpack(raw_bulk_inputs),
    output:
        adata="results/{dataset}/data/prepared.h5ad",
    log:
        "logs/{dataset}/prepare_bulk.log",
    wildcard_constraints:
        dataset=BULK,
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        dataset=lambda wildcards: wildcards.dataset,
        spec=lambda wildcards: DATASETS[wildcards.dataset],
    script:
        "../workflow_scripts/data/prepare_bulk.py"


rule read_singlecell:
    input:
        singlecell_inputs,
    output:
        adata="results/{dataset}/data/raw.h5ad",
    log:
        "logs/{dataset}/read_singlecell.log",
    wildcard_constraints:
        dataset=REAL_SINGLECELL,
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    params:
        sources=singlecell_sources,
        obs_columns=lambda wildcards: DATASETS[wildcards.dataset]["obs_columns"],
        gene_join=lambda wildcards: DATASETS[wildcards.dataset]["gene_join"],
    script:
        "../workflow_scripts/data/read_singlecell.py"


rule prepare_singlecell:
    input:
        unpack(singlecell_prepare_inputs),
    output:
        adata="results/{dataset}/data/prepared.h5ad",
    log:
        "logs/{dataset}/prepare_singlecell.log",
    wildcard_constraints:
        dataset=SINGLECELL,
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    params:
        settings=lambda wildcards: DATASETS[wildcards.dataset]["normalize"],
        seed=config["seed"],
    script:
        "../workflow_scripts/data/prepare_singlecell.py"
