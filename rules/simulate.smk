# Simulated datasets with ground truth: bulk (true DE genes and fold changes, planted gene modules)
# and single cell (batch-free counts of the same cells, DE genes per cell type, batch-affected genes).


rule simulate_bulk:
    output:
        counts="results/{dataset}/data/raw/counts.tsv.gz",
        samples="results/{dataset}/data/raw/samples.tsv",
        genesets="results/{dataset}/data/raw/genesets.gmt",
        truth="results/{dataset}/data/truth.tsv",
    log:
        "logs/{dataset}/simulate_bulk.log",
    wildcard_constraints:
        dataset=BULK,
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        simulate=lambda wildcards: DATASETS[wildcards.dataset]["simulate"],
        seed=config["seed"],
    script:
        "../workflow_scripts/data/simulate_bulk.py"


rule simulate_singlecell:
    output:
        adata="results/{dataset}/data/raw.h5ad",
        truth="results/{dataset}/data/truth.h5ad",
    log:
        "logs/{dataset}/simulate_singlecell.log",
    wildcard_constraints:
        dataset=SIMULATED_SINGLECELL,
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    params:
        simulate=lambda wildcards: DATASETS[wildcards.dataset]["simulate"],
        seed=config["seed"],
    script:
        "../workflow_scripts/data/simulate_singlecell.py"
