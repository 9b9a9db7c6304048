# Study sivae: siVAE's interpretable cell and gene embeddings beside siVAE-0, a plain VAE, LDVAE,
# post-hoc attribution loadings, PCA and gene networks (correlation, mutual information), on
# single-cell datasets with a `sivae:` block. Each method writes its gene neighbourhoods and hub
# scores (genes/), embedding methods also their loadings (loadings/) and cell embedding (runs/);
# the evaluation rules compare them. Helpers: rules/helpers/sivae.smk.


include: "helpers/sivae.smk"


# ------------------------------------------------------------------ trained models
rule train_sivae:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        model="results/{dataset}/sivae/models/{variant}_seed{seed}/model.pt",
        history="results/{dataset}/sivae/models/{variant}_seed{seed}/history.tsv",
        run="results/{dataset}/sivae/runs/{variant}_seed{seed}.h5ad",
        genes="results/{dataset}/sivae/genes/{variant}_seed{seed}.tsv",
        loadings="results/{dataset}/sivae/loadings/{variant}_seed{seed}.tsv",
        timing="results/{dataset}/sivae/loadings/{variant}_seed{seed}.json",
    log:
        "logs/{dataset}/sivae/train_{variant}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/sivae/train_{variant}_seed{seed}.tsv"
    wildcard_constraints:
        dataset=SIVAE_DATASETS,
        variant="sivae|sivae0",
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        mode=lambda wildcards: sivae_block(wildcards)["mode"],
        settings=lambda wildcards: sivae_model_settings(
            wildcards.dataset, wildcards.variant
        ),
        k=lambda wildcards: sivae_block(wildcards)["k"],
        checkpoint_every=lambda wildcards: sivae_block(wildcards)["checkpoint_every"],
        # Kept outside the outputs so a killed run resumes from here instead of starting over.
        checkpoint_dir=lambda wildcards: f"results/{wildcards.dataset}/sivae/models/{wildcards.variant}_seed{wildcards.seed}/checkpoints",
        device=config["device"],
    script:
        "../workflow_scripts/sivae/train_sivae.py"


rule train_plain_vae:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        model="results/{dataset}/sivae/models/vae_seed{seed}/model.pt",
        history="results/{dataset}/sivae/models/vae_seed{seed}/history.tsv",
        run="results/{dataset}/sivae/runs/vae_seed{seed}.h5ad",
    log:
        "logs/{dataset}/sivae/train_vae_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/sivae/train_vae_seed{seed}.tsv"
    wildcard_constraints:
        dataset=SIVAE_DATASETS,
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        mode=lambda wildcards: sivae_block(wildcards)["mode"],
        settings=lambda wildcards: sivae_model_settings(wildcards.dataset, "vae"),
        checkpoint_every=lambda wildcards: sivae_block(wildcards)["checkpoint_every"],
        checkpoint_dir=lambda wildcards: f"results/{wildcards.dataset}/sivae/models/vae_seed{wildcards.seed}/checkpoints",
        device=config["device"],
    script:
        "../workflow_scripts/sivae/train_plain_vae.py"


rule sivae_ldvae:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        run="results/{dataset}/sivae/runs/ldvae.h5ad",
        genes="results/{dataset}/sivae/genes/ldvae.tsv",
        loadings="results/{dataset}/sivae/loadings/ldvae.tsv",
        timing="results/{dataset}/sivae/loadings/ldvae.json",
    log:
        "logs/{dataset}/sivae/ldvae.log",
    benchmark:
        "benchmarks/{dataset}/sivae/ldvae.tsv"
    wildcard_constraints:
        dataset=SIVAE_DATASETS,
    conda:
        "../envs/scvi.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        settings=sivae_block,
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow_scripts/sivae/ldvae.py"


rule sivae_attribution:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
        model=lambda wildcards: f"results/{wildcards.dataset}/sivae/models/vae_seed{sivae_first_seed(wildcards.dataset)}/model.pt",
    output:
        genes="results/{dataset}/sivae/genes/{attribution}.tsv",
        loadings="results/{dataset}/sivae/loadings/{attribution}.tsv",
        timing="results/{dataset}/sivae/loadings/{attribution}.json",
    log:
        "logs/{dataset}/sivae/attribution_{attribution}.log",
    benchmark:
        "benchmarks/{dataset}/sivae/attribution_{attribution}.tsv"
    wildcard_constraints:
        dataset=SIVAE_DATASETS,
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    params:
        settings=sivae_block,
        seed=config["seed"],
    script:
        "../workflow_scripts/sivae/attribution.py"


rule sivae_pca:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        run="results/{dataset}/sivae/runs/pca.h5ad",
        genes="results/{dataset}/sivae/genes/pca.tsv",
        loadings="results/{dataset}/sivae/loadings/pca.tsv",
        timing="results/{dataset}/sivae/loadings/pca.json",
    log:
        "logs/{dataset}/sivae/pca.log",
    benchmark:
        "benchmarks/{dataset}/sivae/pca.tsv"
    wildcard_constraints:
        dataset=SIVAE_DATASETS,
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    params:
        settings=sivae_block,
        seed=config["seed"],
    script:
        "../workflow_scripts/sivae/pca.py"


rule sivae_network:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        genes="results/{dataset}/sivae/genes/{network}.tsv",
    log:
        "logs/{dataset}/sivae/network_{network}.log",
    benchmark:
        "benchmarks/{dataset}/sivae/network_{network}.tsv"
    wildcard_constraints:
        dataset=SIVAE_DATASETS,
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        settings=sivae_block,
    script:
        "../workflow_scripts/sivae/network.py"


# ------------------------------------------------------------------ evaluation
rule sivae_knn:
    input:
        unpack(
            lambda wildcards: {
                **sivae_run_files(wildcards, ["sivae", "sivae0", "vae"]),
                "ldvae": f"results/{wildcards.dataset}/sivae/runs/ldvae.h5ad",
                "pca": f"results/{wildcards.dataset}/sivae/runs/pca.h5ad",
            }
        ),
    output:
        table=report(
            "results/{dataset}/sivae/knn.tsv",
            caption=f"{REPORT_CAPTIONS}/sivae_knn_tsv.rst",
            category="{dataset}",
            subcategory="siVAE",
            labels={"table": "siVAE kNN accuracy"},
        ),
    log:
        "logs/{dataset}/sivae/knn.log",
    benchmark:
        "benchmarks/{dataset}/sivae/knn.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        seed=config["seed"],
    script:
        "../workflow_scripts/sivae/knn.py"


rule sivae_agreement:
    input:
        unpack(sivae_loading_files),
    output:
        table="results/{dataset}/sivae/agreement.tsv",
    log:
        "logs/{dataset}/sivae/agreement.log",
    benchmark:
        "benchmarks/{dataset}/sivae/agreement.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/sivae/agreement.py"


rule sivae_jaccard:
    input:
        unpack(sivae_gene_files),
    output:
        table="results/{dataset}/sivae/jaccard.tsv",
    log:
        "logs/{dataset}/sivae/jaccard.log",
    benchmark:
        "benchmarks/{dataset}/sivae/jaccard.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/sivae/jaccard.py"


rule sivae_truth:
    input:
        unpack(
            lambda wildcards: {
                **sivae_gene_files(wildcards),
                "truth": f"results/{wildcards.dataset}/data/truth.h5ad",
            }
        ),
    output:
        table=report(
            "results/{dataset}/sivae/truth.tsv",
            caption=f"{REPORT_CAPTIONS}/sivae_truth_tsv.rst",
            category="{dataset}",
            subcategory="siVAE",
            labels={"table": "siVAE vs planted modules"},
        ),
    log:
        "logs/{dataset}/sivae/truth.log",
    benchmark:
        "benchmarks/{dataset}/sivae/truth.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        k=lambda wildcards: sivae_block(wildcards)["k"],
    script:
        "../workflow_scripts/sivae/truth.py"


rule sivae_markers:
    input:
        unpack(sivae_gene_files),
    output:
        table=report(
            "results/{dataset}/sivae/markers.tsv",
            caption=f"{REPORT_CAPTIONS}/sivae_markers_tsv.rst",
            category="{dataset}",
            subcategory="siVAE",
            labels={"table": "marker gene neighbourhoods"},
        ),
    log:
        "logs/{dataset}/sivae/markers.log",
    benchmark:
        "benchmarks/{dataset}/sivae/markers.tsv"
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        markers=lambda wildcards: sivae_block(wildcards)["markers"],
    script:
        "../workflow_scripts/sivae/markers.py"


# ------------------------------------------------------------------ figures
rule figure_sivae_embeddings:
    input:
        run=lambda wildcards: f"results/{wildcards.dataset}/sivae/runs/sivae_seed{sivae_first_seed(wildcards.dataset)}.h5ad",
        prepared="results/{dataset}/data/prepared.h5ad",
        truth=lambda wildcards: simulated_only(
            wildcards, "results/{dataset}/data/truth.h5ad"
        ),
    output:
        **{
            name: report(
                f"results/{{dataset}}/figures/sivae_{name}.png",
                caption=f"{REPORT_CAPTIONS}/sivae_{name}.rst",
                category="{dataset}",
                subcategory="siVAE",
            )
            for name in ["cells", "genes"]
        },
    log:
        "logs/{dataset}/figures/sivae_embeddings.log",
    benchmark:
        "benchmarks/{dataset}/figures/sivae_embeddings.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    params:
        markers=lambda wildcards: sivae_block(wildcards)["markers"],
    script:
        "../workflow_scripts/sivae/figure_embeddings.py"


rule figure_sivae_comparison:
    input:
        agreement="results/{dataset}/sivae/agreement.tsv",
        jaccard="results/{dataset}/sivae/jaccard.tsv",
        knn="results/{dataset}/sivae/knn.tsv",
        sivae_genes=lambda wildcards: f"results/{wildcards.dataset}/sivae/genes/sivae_seed{sivae_first_seed(wildcards.dataset)}.tsv",
        pca_genes="results/{dataset}/sivae/genes/pca.tsv",
        truth=lambda wildcards: simulated_only(
            wildcards, "results/{dataset}/data/truth.h5ad"
        ),
    output:
        **{
            name: report(
                f"results/{{dataset}}/figures/sivae_{name}.png",
                caption=f"{REPORT_CAPTIONS}/sivae_{name}.rst",
                category="{dataset}",
                subcategory="siVAE",
            )
            for name in ["agreement", "hubs", "jaccard", "knn"]
        },
    log:
        "logs/{dataset}/figures/sivae_comparison.log",
    benchmark:
        "benchmarks/{dataset}/figures/sivae_comparison.tsv"
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/sivae/figure_comparison.py"
