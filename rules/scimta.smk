# Study scimta: scIMTA graph-autoencoder clustering (docs/models/scimta.md) on single-cell datasets
# with a `scimta` block: low-rank imputation, kNN cell graph (batch-balanced in corrected mode), training,
# gene communities, ARI/NMI beside Leiden on PCA, on the balanced graph and on the scVI latent, batch
# metrics, label-free search and figures.
# Helpers: rules/helpers/scimta.smk.


include: "helpers/scimta.smk"


wildcard_constraints:
    scimta_run=r"(corrected|faithful)_seed\d+",


rule scimta_impute:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        adata="results/{dataset}/scimta/imputed.h5ad",
    log:
        "logs/{dataset}/scimta/impute.log",
    benchmark:
        "benchmarks/{dataset}/scimta/impute.tsv"
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    params:
        variant=lambda wildcards: scimta_block(wildcards)["imputation_variant"],
        rank=lambda wildcards: scimta_block(wildcards)["alra_rank"],
        seed=config["seed"],
    script:
        "../workflow_scripts/scimta/impute.py"


rule scimta_imputation_error:
    input:
        prepared="results/{dataset}/data/prepared.h5ad",
        truth="results/{dataset}/data/truth.h5ad",
    output:
        table=report(
            "results/{dataset}/scimta/imputation.tsv",
            caption=f"{REPORT_CAPTIONS}/scimta_imputation_tsv.rst",
            category="{dataset}",
            subcategory="scIMTA",
            labels={"table": "scIMTA imputation vs truth"},
        ),
    log:
        "logs/{dataset}/scimta/imputation_error.log",
    benchmark:
        "benchmarks/{dataset}/scimta/imputation_error.tsv"
    wildcard_constraints:
        dataset=SIMULATED_SINGLECELL,
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    params:
        mask_fractions=lambda wildcards: scimta_block(wildcards)[
            "imputation_mask_fractions"
        ],
        depths=lambda wildcards: scimta_block(wildcards)["imputation_depths"],
        rank=lambda wildcards: scimta_block(wildcards)["alra_rank"],
        seed=config["seed"],
    script:
        "../workflow_scripts/scimta/imputation_error.py"


rule scimta_graph:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        graph="results/{dataset}/scimta/{mode}_graph.npz",
    log:
        "logs/{dataset}/scimta/{mode}_graph.log",
    benchmark:
        "benchmarks/{dataset}/scimta/{mode}_graph.tsv"
    wildcard_constraints:
        mode="corrected|faithful",
    conda:
        "../envs/torch.yaml"
    threads: 1
    params:
        settings=scimta_model_settings,
        seed=config["seed"],
    script:
        "../workflow_scripts/scimta/graph.py"


rule scimta_train:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
        graph="results/{dataset}/scimta/{mode}_graph.npz",
    output:
        model="results/{dataset}/models/scimta/{mode}/seed{seed}/model.pt",
        history="results/{dataset}/models/scimta/{mode}/seed{seed}/history.tsv",
        cells="results/{dataset}/scimta/{mode}_seed{seed}/cells.tsv.gz",
        communities="results/{dataset}/scimta/{mode}_seed{seed}/gene_communities.tsv",
    log:
        "logs/{dataset}/scimta/train_{mode}_seed{seed}.log",
    benchmark:
        "benchmarks/{dataset}/scimta/train_{mode}_seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        settings=scimta_model_settings,
        community_resolution=lambda wildcards: scimta_block(wildcards)[
            "community_resolution"
        ],
        # Kept outside the outputs so a killed run resumes after its pretraining.
        checkpoint_dir=lambda wildcards: f"results/{wildcards.dataset}/models/scimta/{wildcards.mode}/seed{wildcards.seed}/checkpoints",
        device=config["device"],
    script:
        "../workflow_scripts/scimta/train.py"


rule scimta_communities:
    input:
        imputed="results/{dataset}/scimta/imputed.h5ad",
        cells="results/{dataset}/scimta/{scimta_run}/cells.tsv.gz",
        communities="results/{dataset}/scimta/{scimta_run}/gene_communities.tsv",
    output:
        scores="results/{dataset}/scimta/{scimta_run}/community_scores.tsv",
        explaining="results/{dataset}/scimta/{scimta_run}/explaining_communities.tsv",
    log:
        "logs/{dataset}/scimta/communities_{scimta_run}.log",
    conda:
        "../envs/singlecell.yaml"
    threads: 1
    params:
        min_genes=lambda wildcards: scimta_block(wildcards)["community_min_genes"],
        threshold=lambda wildcards: scimta_block(wildcards)["community_threshold"],
    script:
        "../workflow_scripts/scimta/communities.py"


rule scimta_scores:
    input:
        prepared="results/{dataset}/data/prepared.h5ad",
        # The scVI latent of the integration study (rule train_scvi), reused.
        scvi=scimta_scvi_latent,
        cells=scimta_cells,
    output:
        scores=report(
            "results/{dataset}/scimta/scores.tsv",
            caption=f"{REPORT_CAPTIONS}/scimta_scores_tsv.rst",
            category="{dataset}",
            subcategory="scIMTA",
            labels={"table": "scIMTA ARI/NMI"},
        ),
        batch="results/{dataset}/scimta/batch.tsv",
        umap="results/{dataset}/scimta/umap.tsv.gz",
    log:
        "logs/{dataset}/scimta/scores.log",
    benchmark:
        "benchmarks/{dataset}/scimta/scores.tsv"
    conda:
        "../envs/scib.yaml"
    threads: 1
    params:
        resolutions=lambda wildcards: scimta_block(wildcards)["comparator_resolutions"],
        seed=config["seed"],
    script:
        "../workflow_scripts/scimta/scores.py"


rule scimta_search:
    input:
        adata="results/{dataset}/data/prepared.h5ad",
    output:
        table="results/{dataset}/scimta/search.tsv",
    log:
        "logs/{dataset}/scimta/search.log",
    benchmark:
        "benchmarks/{dataset}/scimta/search.tsv"
    conda:
        "../envs/torch.yaml"
    threads: config["threads"]
    resources:
        gpu=1,
    params:
        settings=scimta_search_settings,
        space=lambda wildcards: scimta_block(wildcards)["search"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../workflow_scripts/scimta/search.py"


rule scimta_figures:
    input:
        umap="results/{dataset}/scimta/umap.tsv.gz",
        scores="results/{dataset}/scimta/scores.tsv",
        communities=lambda wildcards: f"results/{wildcards.dataset}/scimta/{scimta_primary_run(wildcards.dataset)}/community_scores.tsv",
        search="results/{dataset}/scimta/search.tsv",
    output:
        **{
            name: report(
                f"results/{{dataset}}/figures/scimta_{name}.png",
                caption=f"{REPORT_CAPTIONS}/scimta_{name}.rst",
                category="{dataset}",
                subcategory="scIMTA",
            )
            for name in ["umap", "scores", "communities", "search"]
        },
    log:
        "logs/{dataset}/figures/scimta.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/scimta/figures.py"


rule scimta_figure_imputation:
    input:
        table="results/{dataset}/scimta/imputation.tsv",
    output:
        figure=report(
            "results/{dataset}/figures/scimta_imputation.png",
            caption=f"{REPORT_CAPTIONS}/scimta_imputation.rst",
            category="{dataset}",
            subcategory="scIMTA",
        ),
    log:
        "logs/{dataset}/figures/scimta_imputation.log",
    localrule: True
    conda:
        "../envs/core.yaml"
    threads: 1
    script:
        "../workflow_scripts/scimta/figure_imputation.py"
