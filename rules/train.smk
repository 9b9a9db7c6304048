# GPU model training (CUDA when present, CPU otherwise; config key `device`).


rule train_nbvae:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        model="results/{dataset}/models/nbvae/{mode}/seed{seed}/model.pt",
        history="results/{dataset}/models/nbvae/{mode}/seed{seed}/history.tsv",
        latent="results/{dataset}/models/nbvae/{mode}/seed{seed}/latent.tsv",
    log:
        "logs/{dataset}/train_nbvae/{mode}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/train_nbvae/{mode}_seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        settings=lambda wildcards: nbvae_settings(wildcards.dataset),
        device=config["device"],
    script:
        "../workflow_scripts/train_nbvae.py"


rule train_genex:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        model="results/{dataset}/models/genex/{mode}/seed{seed}/model.pt",
        history="results/{dataset}/models/genex/{mode}/seed{seed}/history.tsv",
    log:
        "logs/{dataset}/train_genex/{mode}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/train_genex/{mode}_seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        settings=lambda wildcards: DATASETS[wildcards.dataset]["genex"],
        explain_keys=lambda wildcards: DATASETS[wildcards.dataset]["explain"][
            "covariates"
        ],
        # Kept outside the outputs so a killed run resumes from here instead of starting over.
        checkpoint_dir=lambda wildcards: f"results/{wildcards.dataset}/models/genex/{wildcards.mode}/seed{wildcards.seed}/checkpoints",
        device=config["device"],
    script:
        "../workflow_scripts/train_genex.py"


rule train_scvi:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        adata="results/{dataset}/integration/scvi.h5ad",
    log:
        "logs/{dataset}/train_scvi.log",
    benchmark:
        "benchmarks/{dataset}/train_scvi.tsv"
    conda:
        "../envs/scvi.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        settings=lambda wildcards: DATASETS[wildcards.dataset]["scvi"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow_scripts/train_scvi.py"
