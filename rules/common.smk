# What every study shares: config validation, the dataset table, source and download naming,
# the wildcard constraints of all rules, target dispatch by dataset kind, and the input functions
# of the shared data stages (download, simulate, normalize). Each study's own helpers (input
# functions, target list) live in rules/helpers/<study>.smk, included by rules/<study>.smk.

import re
import sys
from pathlib import Path

# The package lives in src/; make it importable for the parse step even without installation.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from deepexpr.config import (
    contrast_label,
    is_url,
    load_schema,
    model_settings,
    resolve_local,
    validate_config,
)

validate_config(config, load_schema(Path(workflow.basedir) / "config" / "schema.yaml"))

DATASETS = config["datasets"]
RESULTS = "results"
REPORT_CAPTIONS = "../resources/report"

# Study target functions by dataset kind: each study file registers its own with one call, e.g.
# register_targets("bulk", bulk_de_targets); a dataset gets the targets of every study of its kind
# (a study returns [] for a dataset it does not run on).
STUDY_TARGETS = {}


def register_targets(kind, targets):
    STUDY_TARGETS.setdefault(kind, []).append(targets)


def dataset_targets(dataset):
    """Every table and figure a user reads for one dataset (from its studies' target functions)."""
    studies = STUDY_TARGETS[DATASETS[dataset]["kind"]]
    return [path for targets in studies for path in targets(dataset)]


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


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)) or "NO_DATASET",
    mode="corrected|faithful",
    seed=r"\d+",


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


# ------------------------------------------------------------------ downloads
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


# ------------------------------------------------------------------ reading and preparing data
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
