# Config validation, the dataset table, input functions and wildcard constraints.

import re
import sys
from pathlib import Path

# The package lives in src/; make it importable for the parse step even without installation.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from deepexpr.config import (
    contrast_label,
    is_url,
    load_schema,
    resolve_local,
    validate_config,
)

validate_config(config, load_schema(Path(workflow.basedir) / "config" / "schema.yaml"))

DATASETS = config["datasets"]
RESULTS = "results"
GENERATIVE_METHODS = ["generative_corrected", "generative_faithful"]


def is_simulated(dataset):
    return "simulate" in DATASETS[dataset]


def simulated_only(wildcards, pattern):
    """An input that only simulated datasets have (their truth): [path] or []."""
    return (
        [pattern.format(dataset=wildcards.dataset)]
        if is_simulated(wildcards.dataset)
        else []
    )


def datasets_where(kind, simulated=None):
    """Regex alternatives of the dataset names of one kind (for per-rule wildcard constraints)."""
    names = [
        name
        for name, spec in DATASETS.items()
        if spec["kind"] == kind and simulated in (None, is_simulated(name))
    ]
    return "|".join(map(re.escape, names)) or "NO_DATASET"


BULK = datasets_where("bulk")
SINGLECELL = datasets_where("singlecell")
SIMULATED_SINGLECELL = datasets_where("singlecell", simulated=True)
REAL_SINGLECELL = datasets_where("singlecell", simulated=False)
BASELINES = ["unintegrated", "combat", "harmony", "scanorama"]
# Methods whose output is a corrected expression matrix (scVI's normalised expression counts too).
FULL_OUTPUT = ("unintegrated", "combat", "scvi", "genex")


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)) or "NO_DATASET",
    contrast="[A-Za-z0-9_]+",
    mode="corrected|faithful",
    seed=r"\d+",
    collection="[A-Za-z0-9]+",
    method="deseq2|generative_corrected|generative_faithful",
    run=r"unintegrated|combat|harmony|scanorama|scvi|genex_(corrected|faithful)_seed\d+",
    covariate="[A-Za-z0-9_]+",


# Suffixes kept on downloaded files so readers can tell the format and compression.
KEPT_SUFFIXES = (".tar.gz", ".h5ad", ".h5", ".gz")


def download_name(key, source):
    """File name of a downloaded source: the key plus the source's format suffix."""
    path = source.split("?")[0]
    return key + next((suffix for suffix in KEPT_SUFFIXES if path.endswith(suffix)), "")


def file_sources(dataset):
    """Every external file of a dataset as {key: {source, sha256}}: bulk counts, gene_info and
    gene sets (gmt_<name>); single-cell sources and their cell tables (source<i>, metadata<i>).
    """
    spec = DATASETS[dataset]
    if spec["kind"] == "singlecell":
        files = {}
        for number, source in enumerate(spec["sources"], start=1):
            files[f"source{number}"] = {
                "source": source["source"],
                "sha256": source["sha256"],
            }
            if "cell_metadata" in source:
                files[f"metadata{number}"] = source["cell_metadata"]
        return files
    files = {key: spec[key] for key in ("counts", "gene_info") if key in spec}
    files.update({f"gmt_{name}": entry for name, entry in spec["gene_sets"].items()})
    return files


def downloads(dataset):
    """{download file name: source entry} for the sources of a dataset that are URLs."""
    return {
        download_name(key, entry["source"]): entry
        for key, entry in file_sources(dataset).items()
        if is_url(entry["source"])
    }


def local_path(path):
    """A configured local path: relative to the working directory, or else to the workflow
    (so the shipped resources/ are found when running from another directory)."""
    if Path(path).is_absolute() or Path(path).exists():
        return path
    shipped = Path(workflow.basedir) / path
    return str(shipped) if shipped.exists() else path


def source_path(dataset, key):
    """Local path of an external file: its download target, or the configured local path."""
    entry = file_sources(dataset)[key]
    if is_url(entry["source"]):
        return f"resources/downloads/{dataset}/{download_name(key, entry['source'])}"
    return local_path(resolve_local(entry["source"], config["shared_data"]))


def raw_bulk_inputs(wildcards):
    if is_simulated(wildcards.dataset):
        raw = f"{RESULTS}/{wildcards.dataset}/data/raw"
        return {"counts": f"{raw}/counts.tsv.gz", "samples": f"{raw}/samples.tsv"}
    spec = DATASETS[wildcards.dataset]
    inputs = {
        "counts": source_path(wildcards.dataset, "counts"),
        "samples": local_path(spec["sample_sheet"]),
    }
    if "gene_info" in spec:
        inputs["gene_info"] = source_path(wildcards.dataset, "gene_info")
    return inputs


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


def truth_input(wildcards):
    if is_simulated(wildcards.dataset):
        return {"truth": f"{RESULTS}/{wildcards.dataset}/data/truth.tsv"}
    return {}


def nbvae_settings(dataset):
    return DATASETS[dataset]["nbvae"]


def nbvae_models(wildcards):
    seeds = nbvae_settings(wildcards.dataset)["seeds"]
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


def enrich_methods(dataset):
    return ["deseq2"] + [
        f"generative_{mode}" for mode in nbvae_settings(dataset)["modes"]
    ]


def contrast_of(wildcards):
    contrast = dict(DATASETS[wildcards.dataset]["contrasts"][wildcards.contrast])
    contrast["name"] = wildcards.contrast
    contrast["label"] = contrast_label(contrast)
    return contrast


def dataset_targets(dataset):
    """Every table and figure a user reads for one dataset."""
    if DATASETS[dataset]["kind"] == "singlecell":
        return singlecell_targets(dataset)
    base = f"{RESULTS}/{dataset}"
    modes = nbvae_settings(dataset)["modes"]
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
    targets += expand(
        "{base}/figures/{contrast}/enrich_{method}_{collection}_{analysis}.png",
        base=base,
        contrast=contrasts,
        method=enrich_methods(dataset),
        collection=list(collections(dataset)),
        analysis=["ora_up", "ora_down", "prerank"],
    )
    return targets


def download_entry(wildcards):
    entry = downloads(wildcards.dataset).get(wildcards.file)
    if entry is None:
        raise ValueError(
            f"config datasets.{wildcards.dataset}: no URL source is named {wildcards.file!r}"
        )
    return entry


def expected_sha256(wildcards):
    """The pinned checksum, or for an unpinned file the one the download recorded."""
    pinned = download_entry(wildcards)["sha256"]
    if pinned:
        return pinned
    record = Path(f"resources/downloads/{wildcards.dataset}/{wildcards.file}.sha256")
    return record.read_text().split()[0]


def enrich_inputs(wildcards):
    collection = collections(wildcards.dataset)[wildcards.collection]
    base = f"{RESULTS}/{wildcards.dataset}/de/{wildcards.contrast}"
    if wildcards.method == "deseq2":
        table = f"{base}/deseq2.tsv"
    else:
        table = f"{base}/{wildcards.method.removeprefix('generative_')}/generative.tsv"
    return {"table": table, "gmt": collection["path"]}


# ------------------------------------------------------------------ single-cell datasets
def singlecell_sources(wildcards):
    """The configured sources with local paths (downloads or local files) for the reader."""
    spec = DATASETS[wildcards.dataset]
    sources = []
    for number, source in enumerate(spec["sources"], start=1):
        entry = {
            k: v
            for k, v in source.items()
            if k not in ("source", "sha256", "cell_metadata")
        }
        entry["path"] = source_path(wildcards.dataset, f"source{number}")
        if "cell_metadata" in source:
            entry["cell_metadata"] = source_path(wildcards.dataset, f"metadata{number}")
        sources.append(entry)
    return sources


def singlecell_inputs(wildcards):
    """Every file the reader needs, for Snakemake's dependency tracking."""
    return [
        source_path(wildcards.dataset, key) for key in file_sources(wildcards.dataset)
    ]


def singlecell_prepare_inputs(wildcards):
    inputs = {"adata": f"{RESULTS}/{wildcards.dataset}/data/raw.h5ad"}
    if DATASETS[wildcards.dataset]["normalize"]["label_cells"] == "markers":
        inputs["markers"] = local_path("resources/markers/pbmc_markers.tsv")
    return inputs


def genex_runs(dataset):
    spec = DATASETS[dataset]
    if "genex" not in spec["methods"]:
        return []
    genex = spec["genex"]
    return [
        f"genex_{mode}_seed{seed}" for mode in genex["modes"] for seed in genex["seeds"]
    ]


def integration_runs(dataset):
    """Every batch-correction run of a dataset; unintegrated is always there as the reference."""
    methods = DATASETS[dataset]["methods"]
    baselines = [m for m in BASELINES + ["scvi"] if m == "unintegrated" or m in methods]
    return baselines + genex_runs(dataset)


def full_output_runs(dataset):
    return [run for run in integration_runs(dataset) if run.startswith(FULL_OUTPUT)]


def primary_genex(dataset):
    """(mode, seed) of the GENEX model that is explained: corrected if run, and the first seed."""
    genex = DATASETS[dataset]["genex"]
    mode = "corrected" if "corrected" in genex["modes"] else genex["modes"][0]
    return mode, genex["seeds"][0]


def run_files(wildcards, pattern):
    return [
        pattern.format(dataset=wildcards.dataset, run=run)
        for run in integration_runs(wildcards.dataset)
    ]


def full_run_files(wildcards, pattern):
    return [
        pattern.format(dataset=wildcards.dataset, run=run)
        for run in full_output_runs(wildcards.dataset)
    ]


def explain_model(wildcards):
    mode, seed = primary_genex(wildcards.dataset)
    return f"{RESULTS}/{wildcards.dataset}/models/genex/{mode}/seed{seed}/model.pt"


def singlecell_targets(dataset):
    spec = DATASETS[dataset]
    base = f"{RESULTS}/{dataset}"
    figures = ["scib_table", "umap_batch", "umap_cell_type", "value_histograms"]
    targets = [f"{base}/integration/scib.tsv"]
    targets += expand(
        "{base}/de/wilcoxon_{run}.tsv", base=base, run=full_output_runs(dataset)
    )
    if "pseudobulk" in spec:
        targets += expand(
            "{base}/de/pseudobulk_{run}.tsv", base=base, run=full_output_runs(dataset)
        )
    if is_simulated(dataset):
        targets.append(f"{base}/integration/truth.tsv")
        figures += ["truth_scatter", "truth_metrics", "de_recovery"]
    if genex_runs(dataset):
        targets += expand(
            "{base}/explain/{covariate}.tsv",
            base=base,
            covariate=spec["explain"]["covariates"],
        )
        figures += expand(
            "explain_{covariate}_{kind}",
            covariate=spec["explain"]["covariates"],
            kind=["heatmap", "dotplot", "completeness"],
        )
        figures += [f"genex_{mode}_loss" for mode in spec["genex"]["modes"]]
    targets += expand("{base}/figures/{figure}.png", base=base, figure=figures)
    return targets
