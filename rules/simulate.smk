# Simulated datasets with ground truth (true DE genes and fold changes, planted gene modules).


rule simulate_bulk:
    output:
        counts="results/{dataset}/data/raw/counts.tsv.gz",
        samples="results/{dataset}/data/raw/samples.tsv",
        genesets="results/{dataset}/data/raw/genesets.gmt",
        truth="results/{dataset}/data/truth.tsv",
    log:
        "logs/{dataset}/simulate_bulk.log",
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        simulate=lambda wildcards: DATASETS[wildcards.dataset]["simulate"],
        seed=config["seed"],
    script:
        "../workflow_scripts/simulate_bulk.py"
