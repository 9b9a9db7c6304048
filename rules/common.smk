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


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)) or "NO_DATASET",
    contrast="[A-Za-z0-9_]+",
    mode="corrected|faithful",
    seed=r"\d+",
    collection="[A-Za-z0-9]+",
    method="deseq2|generative_corrected|generative_faithful",


def is_simulated(dataset):
    return "simulate" in DATASETS[dataset]


def download_name(key, source):
    """File name of a downloaded source; keeps .gz so readers detect compression."""
    return key + (".gz" if source.split("?")[0].endswith(".gz") else "")


def file_sources(dataset):
    """Every external file of a dataset as {key: {source, sha256}} (gene sets as gmt_<name>)."""
    spec = DATASETS[dataset]
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
