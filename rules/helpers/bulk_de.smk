# Helpers of study bulk_de (input functions, target list), included by rules/bulk_de.smk.


wildcard_constraints:
    contrast="[A-Za-z0-9_]+",
    collection="[A-Za-z0-9]+",
    method="deseq2|generative_corrected|generative_faithful",


def nbvae_block(dataset):
    """The dataset's whole `nbvae` config block (model settings and workflow keys)."""
    return DATASETS[dataset]["nbvae"]


def nbvae_model_settings(wildcards):
    """The NB-VAE model settings of a dataset (the block without the workflow-only keys)."""
    return model_settings(nbvae_block(wildcards.dataset))


def nbvae_inputs(wildcards):
    inputs = {"adata": f"{RESULTS}/{wildcards.dataset}/data/prepared.h5ad"}
    if nbvae_block(wildcards.dataset)["dispersion"] == "deseq2":
        inputs["dispersions"] = (
            f"{RESULTS}/{wildcards.dataset}/models/deseq2_dispersions.tsv"
        )
    return inputs


def nbvae_models(wildcards):
    seeds = nbvae_block(wildcards.dataset)["seeds"]
    return expand(
        "{results}/{dataset}/models/nbvae/{mode}/seed{seed}/model.pt",
        results=RESULTS,
        dataset=wildcards.dataset,
        mode=wildcards.mode,
        seed=seeds,
    )


def nbvae_runs(wildcards, name):
    """One file per training seed (history.tsv, latent.tsv) of a dataset and mode."""
    return [path.replace("model.pt", name) for path in nbvae_models(wildcards)]


def corrected_dispersions(wildcards):
    """One learned dispersion table per training seed of the corrected mode."""
    return expand(
        "{results}/{dataset}/models/nbvae/corrected/seed{seed}/dispersion.tsv",
        results=RESULTS,
        dataset=wildcards.dataset,
        seed=nbvae_block(wildcards.dataset)["seeds"],
    )


def collections(dataset):
    """{collection name: {path, id_type}}; simulated data brings its planted modules."""
    found = {
        name: {"path": source_path(dataset, f"gmt_{name}"), "id_type": entry["id_type"]}
        for name, entry in DATASETS[dataset]["gene_sets"].items()
    }
    if is_simulated(dataset):
        found["modules"] = {
            "path": f"{RESULTS}/{dataset}/data/raw/genesets.gmt",
            "id_type": "entrez",
        }
    return found


def enrich_methods(dataset):
    return ["deseq2"] + [f"generative_{mode}" for mode in nbvae_block(dataset)["modes"]]


def enrich_inputs(wildcards):
    collection = collections(wildcards.dataset)[wildcards.collection]
    base = f"{RESULTS}/{wildcards.dataset}/de/{wildcards.contrast}"
    if wildcards.method == "deseq2":
        table = f"{base}/deseq2.tsv"
    else:
        table = f"{base}/{wildcards.method.removeprefix('generative_')}/generative.tsv"
    return {"table": table, "gmt": collection["path"]}


def contrast_of(wildcards):
    contrast = dict(DATASETS[wildcards.dataset]["contrasts"][wildcards.contrast])
    contrast["name"] = wildcards.contrast
    contrast["label"] = contrast_label(contrast)
    return contrast


def de_statistics_inputs(wildcards):
    """pyDESeq2's table, the corrected mode's generative table(s), and the truth when simulated."""
    base = f"{RESULTS}/{wildcards.dataset}/de/{wildcards.contrast}"
    inputs = {
        "deseq2": f"{base}/deseq2.tsv",
        "replicate_error": f"{base}/corrected/generative.tsv",
    }
    if nbvae_block(wildcards.dataset)["posterior_predictive"]:
        inputs["posterior_predictive"] = (
            f"{base}/corrected/generative_posterior_predictive.tsv"
        )
    return {**inputs, **truth_input(wildcards)}


def truth_input(wildcards):
    if is_simulated(wildcards.dataset):
        return {"truth": f"{RESULTS}/{wildcards.dataset}/data/truth.tsv"}
    return {}


def bulk_de_targets(dataset):
    """Every table and figure a user reads for one bulk dataset."""
    base = f"{RESULTS}/{dataset}"
    modes = nbvae_block(dataset)["modes"]
    contrasts = list(DATASETS[dataset]["contrasts"])
    targets = [f"{base}/figures/pca_latent.png"]
    targets += expand(
        "{base}/figures/nbvae_{mode}_{figure}.png",
        base=base,
        mode=modes,
        figure=["latent", "loss"],
    )
    targets += expand(
        "{base}/figures/{contrast}/deseq2_volcano.png", base=base, contrast=contrasts
    )
    per_mode = ["lfc_scatter", "generative_volcano", "na_genes", "seed_spread"]
    per_mode += ["credible_intervals"]
    if is_simulated(dataset):
        per_mode += ["roc", "pr"]
    targets += expand(
        "{base}/figures/{contrast}/{mode}_{figure}.png",
        base=base,
        contrast=contrasts,
        mode=modes,
        figure=per_mode,
    )
    if "corrected" in modes:
        targets += expand(
            "{base}/de/{contrast}/de_statistics.tsv", base=base, contrast=contrasts
        )
        if is_simulated(dataset):
            targets.append(f"{base}/models/nbvae/corrected/dispersion_vs_truth.tsv")
    targets += expand(
        "{base}/figures/{contrast}/enrich_{method}_{collection}_{analysis}.png",
        base=base,
        contrast=contrasts,
        method=enrich_methods(dataset),
        collection=list(collections(dataset)),
        analysis=["ora_up", "ora_down", "prerank"],
    )
    return targets


register_targets("bulk", bulk_de_targets)
