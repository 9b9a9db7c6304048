"""The scIMTA study end to end on a tiny simulated config: its targets, tables and figures."""

from __future__ import annotations

import pandas as pd
import pytest

from test_workflow_e2e import run_workflow, tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_scimta_targets_on_tiny_sim_pbmc(tmp_path):
    config = tiny_config()
    config["run"] = ["sim_pbmc"]
    sim = config["datasets"]["sim_pbmc"]
    sim["scvi"]["max_epochs"] = 2
    sim["scimta"] = {
        "modes": ["corrected", "faithful"],
        "pretrain_epochs": 5,
        "cluster_epochs": 3,
        "batch_size": 128,
        "comparator_resolutions": [0.5, 1.0],
        "search": {"k": [10]},
        "search_settings": {"pretrain_epochs": 2, "cluster_epochs": 1},
    }
    base = "results/sim_pbmc"
    targets = [
        f"{base}/scimta/scores.tsv",
        f"{base}/scimta/imputation.tsv",
        f"{base}/scimta/corrected_seed0/explaining_communities.tsv",
        f"{base}/figures/scimta_umap.png",
        f"{base}/figures/scimta_imputation.png",
    ]
    result = run_workflow(tmp_path, config, *targets)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    scores = pd.read_csv(tmp_path / base / "scimta" / "scores.tsv", sep="\t")
    assert set(scores["method"]) == {"leiden_pca", "leiden_pca_balanced", "leiden_scvi", "scimta_corrected_seed0", "scimta_faithful_seed0"}
    assert set(scores["selection"]) == {"label_free", "oracle"}
    assert scores[["ari", "nmi"]].apply(lambda c: c.between(-1, 1)).all().all()
    imputation = pd.read_csv(tmp_path / base / "scimta" / "imputation.tsv", sep="\t")
    assert set(imputation["values"]) == {"observed", "zero_fill", "alra"}
    assert (tmp_path / base / "figures" / "scimta_search.png").stat().st_size > 0
    batch = pd.read_csv(tmp_path / base / "scimta" / "batch.tsv", sep="\t")
    assert {"pca", "scvi", "scimta_corrected_seed0", "scimta_faithful_seed0"} == set(batch["method"])
