"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The plot modules leave the backend alone (notebooks); tests draw off-screen like the rules.
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
# The small real datasets live beside the checkout and are never copied into it.
SHARED_DATA = Path(os.environ.get("DEEPEXPR_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (several threads spin on a busy machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def parsed_workflow():
    """The workflow as Snakemake parses it from the repository's Snakefile (rules, local rules)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DeploymentSettings, ResourceSettings, StorageSettings

    with SnakemakeApi() as api:
        return api.workflow(
            snakefile=REPO / "Snakefile",
            workdir=REPO,
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(),
            storage_settings=StorageSettings(),
            deployment_settings=DeploymentSettings(),
        )._workflow


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test with a clear reason when it is absent."""
    if not (SHARED_DATA / "SOURCES.md").is_file():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set DEEPEXPR_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def gse60450_adata(shared_data):
    """The real GSE60450 dataset prepared as the workflow's prepare_bulk rule does (offline sources)."""
    import yaml

    from deepexpr.config import load_schema, validate_config
    from deepexpr.data.bulk.prepare import prepare_bulk

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate_config(config, load_schema(REPO / "config" / "schema.yaml"))
    return prepare_bulk(
        "gse60450",
        config["datasets"]["gse60450"],
        counts_path=shared_data / "gse60450" / "GSE60450_LactationGenewiseCounts.txt.gz",
        sample_sheet_path=REPO / "resources" / "gse60450_samples.tsv",
        gene_info_path=shared_data / "annotation" / "Mus_musculus.gene_info.2021-07.gz",
    )
