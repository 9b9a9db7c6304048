# Gene-set enrichment (gseapy, offline GMTs): ORA of up and down genes, prerank on ranked LFCs.


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
    threads: 1
    params:
        id_type=lambda wildcards: collections(wildcards.dataset)[wildcards.collection][
            "id_type"
        ],
        settings=lambda wildcards: DATASETS[wildcards.dataset]["enrich"],
        seed=config["seed"],
    script:
        "../workflow_scripts/enrich.py"
