# Helpers of study sivae (input functions, target list), included by rules/sivae.smk.

from deepexpr.models.sivae.settings import MODE_DEFAULTS as SIVAE_MODE_DEFAULTS

# The trained variants: siVAE (gamma from config), siVAE-0 (gamma 0) and a plain VAE of the same size.
SIVAE_VARIANTS = ["sivae", "sivae0", "vae"]
# Gene-side methods besides the trained variants; each has its own rule.
SIVAE_LOADING_METHODS = ["ldvae", "pca", "ig", "saliency"]
SIVAE_NETWORKS = ["correlation", "mutual_information"]
# Cell embeddings scored by kNN accuracy.
SIVAE_CELL_METHODS = ["sivae", "sivae0", "vae", "ldvae", "pca"]

SIVAE_DATASETS = (
    "|".join(
        re.escape(name)
        for name, spec in DATASETS.items()
        if spec["kind"] == "singlecell" and "sivae" in spec
    )
    or "NO_DATASET"
)


wildcard_constraints:
    variant="|".join(SIVAE_VARIANTS),
    network="|".join(SIVAE_NETWORKS),
    attribution="ig|saliency",


def runs_sivae(dataset):
    return "sivae" in DATASETS[dataset]


def sivae_block(wildcards):
    return DATASETS[wildcards.dataset]["sivae"]


def sivae_model_settings(dataset, variant):
    """SIVAE(...) keyword settings of one variant: the config block's model keys (None = the
    mode's default) with gamma 0 for siVAE-0, and no feature or joint stage for the plain VAE,
    which instead gets as many passes over the cells as siVAE's cell and joint stages together.
    """
    block = DATASETS[dataset]["sivae"]
    defaults = SIVAE_MODE_DEFAULTS[block["mode"]]
    settings = {key: value for key, value in block.items() if key in defaults}
    if variant == "sivae0":
        settings["gamma"] = 0.0
    elif variant == "vae":
        epochs = {
            stage: defaults[stage] if settings.get(stage) is None else settings[stage]
            for stage in ("cell_epochs", "joint_epochs")
        }
        settings.update(
            cell_epochs=epochs["cell_epochs"] + epochs["joint_epochs"],
            feature_epochs=0,
            joint_epochs=0,
            gamma=0.0,
        )
    return settings


def sivae_first_seed(dataset):
    return DATASETS[dataset]["sivae"]["seeds"][0]


def sivae_run_files(wildcards, variants):
    """The annotated AnnData of each variant and seed, keyed '<variant>_seed<seed>'."""
    return {
        f"{variant}_seed{seed}": f"{RESULTS}/{wildcards.dataset}/sivae/runs/{variant}_seed{seed}.h5ad"
        for variant in variants
        for seed in sivae_block(wildcards)["seeds"]
    }


def sivae_gene_files(wildcards):
    """Gene neighbourhoods and hub scores of every method: the trained variants (all seeds; the
    plain VAE has no gene side of its own), the loading methods and the networks."""
    base = f"{RESULTS}/{wildcards.dataset}/sivae/genes"
    files = {
        f"{variant}_seed{seed}": f"{base}/{variant}_seed{seed}.tsv"
        for variant in ("sivae", "sivae0")
        for seed in sivae_block(wildcards)["seeds"]
    }
    files.update(
        {
            method: f"{base}/{method}.tsv"
            for method in SIVAE_LOADING_METHODS + SIVAE_NETWORKS
        }
    )
    return files


def sivae_loading_files(wildcards):
    """Loadings (genes x dims) of siVAE and siVAE-0 (first seed) and of the loading methods, with
    the time each took."""
    base = f"{RESULTS}/{wildcards.dataset}/sivae/loadings"
    seed = sivae_first_seed(wildcards.dataset)
    names = [f"sivae_seed{seed}", f"sivae0_seed{seed}"] + SIVAE_LOADING_METHODS
    return {name: f"{base}/{name}.tsv" for name in names}


def sivae_targets(dataset):
    """Every table and figure of the siVAE study of one single-cell dataset ([] without a sivae block)."""
    if not runs_sivae(dataset):
        return []
    base = f"{RESULTS}/{dataset}/sivae"
    tables = ["knn", "agreement", "jaccard", "markers"]
    figures = ["cells", "genes", "agreement", "hubs", "jaccard", "knn"]
    if is_simulated(dataset):
        tables.append("truth")
    return [f"{base}/{table}.tsv" for table in tables] + [
        f"{RESULTS}/{dataset}/figures/sivae_{figure}.png" for figure in figures
    ]


register_targets("singlecell", sivae_targets)
