# Batch correction: every method writes one .h5ad (embedding, and corrected values when it has them).


rule integrate_baseline:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        adata="results/{dataset}/integration/{baseline}.h5ad",
    log:
        "logs/{dataset}/integrate/{baseline}.log",
    benchmark:
        "benchmarks/{dataset}/integrate/{baseline}.tsv"
    wildcard_constraints:
        baseline="|".join(BASELINES),
    conda:
        "../envs/singlecell.yaml"
    threads: config["threads"]
    params:
        seed=config["seed"],
    script:
        "../workflow_scripts/integrate_baseline.py"


rule correct_genex:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
        model="results/{dataset}/models/genex/{mode}/seed{seed}/model.pt",
    output:
        adata="results/{dataset}/integration/genex_{mode}_seed{seed}.h5ad",
    log:
        "logs/{dataset}/integrate/genex_{mode}_seed{seed}.log",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    params:
        device=config["device"],
    script:
        "../workflow_scripts/correct_genex.py"
