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
