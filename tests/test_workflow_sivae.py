"""End-to-end run of the siVAE study's targets on a tiny simulated config, and its config errors."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import pandas as pd
import pytest
import yaml

from deepexpr.config import load_schema, validate_config
from deepexpr.errors import InputError
from test_workflow_e2e import REPO, run_workflow, tiny_config

pytestmark = pytest.mark.workflow

# The marker table and the embedding scatters are left to tests/test_sivae_study.py (two jobs fewer).
TABLES = ["knn", "agreement", "jaccard", "truth"]
FIGURES = ["agreement", "hubs", "jaccard", "knn"]


def sivae_config() -> dict:
    """tiny_config() with sim_pbmc's planted modules and a siVAE block a few epochs long."""
    config = tiny_config(run=["sim_pbmc"])
    full = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["datasets"]["sim_pbmc"]
    sim_pbmc = config["datasets"]["sim_pbmc"]
    sim_pbmc["simulate"]["modules"] = {"n_modules": 3, "module_size": 10, "hubs_per_module": 2}
    sim_pbmc["sivae"] = {
        **full["sivae"],
        "seeds": [0],
        "hidden": [32],
        "latent_dim": 4,
        "feature_dim": 100,
        "cell_epochs": 3,
        "feature_epochs": 3,
        "joint_epochs": 3,
        "ldvae_epochs": 3,
        "attribution_cells": 50,
        "k": 5,
    }
    return config


def sivae_targets(dataset: str) -> list[str]:
    return [f"results/{dataset}/sivae/{table}.tsv" for table in TABLES] + [
        f"results/{dataset}/figures/sivae_{figure}.png" for figure in FIGURES
    ]


def test_sivae_study_runs_on_simulated_data(tmp_path):
    result = run_workflow(tmp_path, sivae_config(), *sivae_targets("sim_pbmc"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    base = tmp_path / "results" / "sim_pbmc" / "sivae"
    truth = pd.read_csv(base / "truth.tsv", sep="\t", dtype={"seed": str})
    assert set(truth["method"]) == {"sivae", "sivae0", "ldvae", "pca", "ig", "saliency", "correlation", "mutual_information"}
    assert truth[["precision", "hub_auroc"]].notna().all().all()
    # The correlation network finds planted modules far above chance (a module gene's share of
    # same-module genes among all genes is ~0.05 here); a table that lost the gene order would not.
    assert truth.set_index("method").loc["correlation", "precision"] > 0.5
    knn = pd.read_csv(base / "knn.tsv", sep="\t", dtype={"seed": str})
    assert set(knn["method"]) == {"sivae", "sivae0", "vae", "ldvae", "pca"}
    assert knn["knn_accuracy"].between(0, 1).all()
    agreement = pd.read_csv(base / "agreement.tsv", sep="\t")
    assert set(agreement["method"]) == {"sivae0", "ldvae", "pca", "ig", "saliency"}
    assert (agreement.groupby("method").size() == 4).all()  # one row per latent dimension
    assert (agreement["seconds"] > 0).all()
    run = ad.read_h5ad(base / "runs" / "sivae_seed0.h5ad")
    assert run.obsm["X_sivae"].shape == (run.n_obs, 4)
    assert run.varm["sivae_loadings"].shape == (run.n_vars, 4)
    assert {"sivae_hub_reconstruction", "sivae_hub_norm", "sivae_feature_awareness"} <= set(run.var)
    assert run.uns["sivae"]["settings"]["gamma"] == 0.05
    assert ad.read_h5ad(base / "runs" / "sivae0_seed0.h5ad").uns["sivae"]["settings"]["gamma"] == 0.0
    for figure in FIGURES:
        assert (tmp_path / "results" / "sim_pbmc" / "figures" / f"sivae_{figure}.png").stat().st_size > 1000, figure
    assert (tmp_path / "benchmarks" / "sim_pbmc" / "sivae" / "train_sivae_seed0.tsv").exists()


def test_negative_gamma_is_a_config_error_naming_the_key(tmp_path):
    config = sivae_config()
    config["datasets"]["sim_pbmc"]["sivae"]["gamma"] = -0.1
    with pytest.raises(InputError, match="sivae.gamma"):
        validate_config(config, load_schema(REPO / "config" / "schema.yaml"))
    result = run_workflow(tmp_path, config, *sivae_targets("sim_pbmc"), extra=["-n"])
    assert result.returncode != 0
    assert "sivae.gamma" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()
