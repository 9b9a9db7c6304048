# Integrated-Gradients explanation of the GENEX critic's covariate heads: ranked gene tables.


rule explain_genex:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
        model=explain_model,
        truth=lambda wildcards: simulated_only(
            wildcards, "results/{dataset}/data/truth.h5ad"
        ),
    output:
        genes="results/{dataset}/explain/{covariate}.tsv",
        cells="results/{dataset}/explain/{covariate}_cells.tsv.gz",
        summary="results/{dataset}/explain/{covariate}_summary.json",
    log:
        "logs/{dataset}/explain/{covariate}.log",
    benchmark:
        "benchmarks/{dataset}/explain/{covariate}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    params:
        settings=lambda wildcards: DATASETS[wildcards.dataset]["explain"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow_scripts/explain_genex.py"
