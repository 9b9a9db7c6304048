# Read and validate raw inputs, filter genes, size factors and log-normalised expression.


rule prepare_bulk:
    input:
        unpack(raw_bulk_inputs),
    output:
        adata="results/{dataset}/data/prepared.h5ad",
    log:
        "logs/{dataset}/prepare_bulk.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        dataset=lambda wildcards: wildcards.dataset,
        spec=lambda wildcards: DATASETS[wildcards.dataset],
    script:
        "../workflow_scripts/prepare_bulk.py"
