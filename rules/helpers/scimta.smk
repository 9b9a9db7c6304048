# Helpers of study scimta (settings, target list), included by rules/scimta.smk.

# Keys of a dataset's scimta block that configure the workflow, not the model.
SCIMTA_WORKFLOW_KEYS = (
    "modes",
    "seeds",
    "alra_rank",
    "imputation_variant",
    "imputation_mask_fractions",
    "imputation_depths",
    "community_resolution",
    "community_min_genes",
    "community_threshold",
    "comparator_resolutions",
    "search",
    "search_settings",
)


def runs_scimta(dataset):
    return "scimta" in DATASETS[dataset]


def scimta_block(wildcards):
    return DATASETS[wildcards.dataset]["scimta"]


def scimta_model_settings(wildcards):
    """The model settings of a dataset's scimta block (None = the mode's default)."""
    block = scimta_block(wildcards)
    return {
        key: value
        for key, value in block.items()
        if key not in SCIMTA_WORKFLOW_KEYS and value is not None
    }


def scimta_search_settings(wildcards):
    return {
        **scimta_model_settings(wildcards),
        **scimta_block(wildcards)["search_settings"],
    }


def scimta_runs(dataset):
    block = DATASETS[dataset]["scimta"]
    return [f"{mode}_seed{seed}" for mode in block["modes"] for seed in block["seeds"]]


def scimta_cells(wildcards):
    return expand(
        "{base}/scimta/{run}/cells.tsv.gz",
        base=f"{RESULTS}/{wildcards.dataset}",
        run=scimta_runs(wildcards.dataset),
    )


def scimta_scvi_latent(wildcards):
    """The integration study's scVI run whose latent Leiden-on-scVI clusters: the first mode and seed
    of the dataset's scvi block (rule train_scvi builds it even where scVI is not in `methods`).
    """
    scvi = DATASETS[wildcards.dataset]["scvi"]
    run = f"scvi_{scvi['modes'][0]}_seed{scvi['seeds'][0]}"
    return f"{RESULTS}/{wildcards.dataset}/integration/{run}.h5ad"


def scimta_primary_run(dataset):
    """The run whose clusters get the gene-community heatmap: corrected if run, first seed."""
    block = DATASETS[dataset]["scimta"]
    mode = "corrected" if "corrected" in block["modes"] else block["modes"][0]
    return f"{mode}_seed{block['seeds'][0]}"


def scimta_targets(dataset):
    """Every scIMTA table and figure of a dataset with a scimta block (opt-in per dataset)."""
    if not runs_scimta(dataset):
        return []
    base = f"{RESULTS}/{dataset}"
    targets = [
        f"{base}/scimta/scores.tsv",
        f"{base}/scimta/batch.tsv",
        f"{base}/scimta/search.tsv",
        f"{base}/scimta/{scimta_primary_run(dataset)}/explaining_communities.tsv",
    ]
    figures = ["scimta_umap", "scimta_scores", "scimta_communities", "scimta_search"]
    if is_simulated(dataset):
        targets.append(f"{base}/scimta/imputation.tsv")
        figures.append("scimta_imputation")
    targets += expand("{base}/figures/{figure}.png", base=base, figure=figures)
    return targets


register_targets("singlecell", scimta_targets)
