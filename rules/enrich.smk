# Gene-set enrichment (gseapy, offline GMTs): ORA of up and down genes, prerank on ranked LFCs.


def enrich_inputs(wildcards):
    collection = collections(wildcards.dataset)[wildcards.collection]
    base = f"{RESULTS}/{wildcards.dataset}/de/{wildcards.contrast}"
    if wildcards.method == "deseq2":
        table = f"{base}/deseq2.tsv"
    else:
        table = f"{base}/{wildcards.method.removeprefix('generative_')}/generative.tsv"
    return {"table": table, "gmt": collection["path"]}


rule enrich:
    input:
        unpack(enrich_inputs),
    output:
        table="results/{dataset}/enrich/{contrast}/{method}_{collection}.tsv",
    params:
        id_type=lambda wildcards: collections(wildcards.dataset)[wildcards.collection][
            "id_type"
        ],
        settings=lambda wildcards: DATASETS[wildcards.dataset]["enrich"],
        seed=config["seed"],
    log:
        "logs/{dataset}/enrich/{contrast}_{method}_{collection}.log",
    benchmark:
        "benchmarks/{dataset}/enrich/{contrast}_{method}_{collection}.tsv"
    conda:
        "../envs/enrich.yaml"
    threads: 1
    script:
        "../workflow_scripts/enrich.py"
