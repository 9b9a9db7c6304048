# Helpers of study generain (input functions, target list), included by rules/generain.smk.

from deepexpr.models.generain.settings import (
    DATA_MODE_DEFAULTS,
    VARIANTS,
    variant_settings,
)

ARCHS4 = datasets_where("archs4")
SIMULATED_ARCHS4 = datasets_where("archs4", simulated=True)
TABLE_ARCHS4 = (
    "|".join(
        re.escape(name)
        for name, spec in DATASETS.items()
        if spec["kind"] == "archs4" and "from_tables" in spec
    )
    or "NO_DATASET"
)


wildcard_constraints:
    variant="|".join(VARIANTS),


def generain_block(dataset):
    return DATASETS[dataset]["generain"]


def archs4_file(wildcards):
    """The dataset's ARCHS4-schema HDF5 file: simulated, built from count tables, or its source."""
    spec = DATASETS[wildcards.dataset]
    if is_simulated(wildcards.dataset) or "from_tables" in spec:
        return f"{RESULTS}/{wildcards.dataset}/data/archs4.h5"
    return source_path(wildcards.dataset, "counts")


def archs4_tables(wildcards):
    """{series name: count table path} of a dataset built from count tables."""
    tables = DATASETS[wildcards.dataset]["from_tables"]["tables"]
    return {
        name: local_path(resolve_local(path, config["shared_data"]))
        for name, path in tables.items()
    }


def archs4_labels(wildcards):
    labels = DATASETS[wildcards.dataset]["from_tables"].get("sample_labels")
    return (
        []
        if labels is None
        else [local_path(resolve_local(labels, config["shared_data"]))]
    )


def binning_settings(wildcards):
    """prepare_binned's data settings: the mode's defaults (R1-R3), then the dataset's keys."""
    block = generain_block(wildcards.dataset)
    settings = dict(DATA_MODE_DEFAULTS[wildcards.mode])
    for key in ("n_bins", "boundary_fraction", "split"):
        if block[key] is not None:
            settings[key] = block[key]
    if settings["binning"] == "rank":
        settings.pop("boundary_fraction", None)
    settings["fractions"] = tuple(block["split_fractions"])
    return settings


def generain_settings(wildcards):
    """GeneRAIN model settings of one variant: the block's `model` keys, then the variant's own."""
    return variant_settings(config, wildcards.dataset, wildcards.variant)


def attribute_sources(wildcards):
    """Gene-attribute inputs: the simulated attribute table, and/or gene-set GMTs and gene lists."""
    spec = DATASETS[wildcards.dataset]
    inputs = {}
    if is_simulated(wildcards.dataset):
        inputs["simulated"] = f"{RESULTS}/{wildcards.dataset}/data/gene_attributes.tsv"
    for name in spec["gene_sets"]:
        inputs[f"gmt_{name}"] = source_path(wildcards.dataset, f"gmt_{name}")
    for name, entry in spec["gene_lists"].items():
        inputs[f"list_{name}"] = local_path(
            resolve_local(entry["source"], config["shared_data"])
        )
    return inputs


def generain_runs(dataset):
    """(mode, variant, seed) of every GeneRAIN model of a dataset."""
    block = generain_block(dataset)
    return [
        (mode, variant, seed)
        for mode in block["modes"]
        for variant in block["variants"]
        for seed in block["seeds"]
    ]


def generain_model_dir(dataset, mode, variant, seed):
    return f"{RESULTS}/{dataset}/models/generain/{mode}/{variant}_seed{seed}"


def generain_embeddings(wildcards):
    """{method name: embedding TSV} of the models benchmarked for one mode (variant_seed)."""
    block = generain_block(wildcards.dataset)
    return {
        f"{variant}_seed{seed}": f"{generain_model_dir(wildcards.dataset, wildcards.mode, variant, seed)}/embedding.tsv"
        for variant in block["variants"]
        for seed in block["seeds"]
    }


def generain_histories(wildcards):
    block = generain_block(wildcards.dataset)
    seed = block["seeds"][0]
    return {
        variant: f"{generain_model_dir(wildcards.dataset, wildcards.mode, variant, seed)}/history.tsv"
        for variant in block["variants"]
    }


def generain_targets(dataset):
    """Every table and figure a user reads for one ARCHS4 dataset."""
    block = generain_block(dataset)
    targets = []
    for mode in block["modes"]:
        base = f"{RESULTS}/{dataset}/generain/{mode}"
        targets += [
            f"{base}/attribute_scores.tsv",
            f"{base}/attribute_summary.tsv",
            f"{base}/attribute_comparisons.tsv",
            f"{base}/nearest_neighbours.tsv",
        ]
        targets += expand(
            "{base}/figures/{figure}.png",
            base=base,
            figure=["loss", "binning", "auc", "umap"],
        )
    for mode, variant, seed in generain_runs(dataset):
        targets.append(
            f"{generain_model_dir(dataset, mode, variant, seed)}/GeneRAIN-vec.txt.gz"
        )
    return targets


register_targets("archs4", generain_targets)
