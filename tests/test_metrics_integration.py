"""scIB table, UMAP coordinates and value histograms of integration runs."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from deepexpr.errors import InputError
from deepexpr.integration.baselines import finish_integration
from deepexpr.evaluate.integration import scib_table, shared_bins, umap_table, value_histogram, value_summary
from deepexpr.metrics.integration import SCIB_COLUMNS

N_PER_GROUP = 40  # 3 cell types x 3 batches x 40 cells


def _prepared() -> ad.AnnData:
    cell_type = np.repeat(["t0", "t1", "t2"], 3 * N_PER_GROUP)
    batch = np.tile(np.repeat(["b0", "b1", "b2"], N_PER_GROUP), 3)
    obs = pd.DataFrame({"batch": batch, "cell_type": cell_type}, index=[f"cell{i}" for i in range(batch.size)])
    return ad.AnnData(np.zeros((batch.size, 4), dtype=np.float32), obs=obs)


def _embedding(prepared: ad.AnnData, batch_shift: float, seed: int) -> np.ndarray:
    """Cell types as well-separated clusters in 10-D; each batch displaced by ``batch_shift``."""
    rng = np.random.default_rng(seed)
    type_code = pd.Categorical(prepared.obs["cell_type"]).codes
    batch_code = pd.Categorical(prepared.obs["batch"]).codes
    centres = np.eye(10)[:3] * 10
    batch_offsets = np.eye(10)[3:6] * batch_shift
    return centres[type_code] + batch_offsets[batch_code] + rng.normal(0, 1, (prepared.n_obs, 10))


@pytest.fixture(scope="module")
def runs() -> dict[str, ad.AnnData]:
    prepared = _prepared()
    common = {"seconds": 0.0, "params": {}, "output": "embed"}
    return {
        "unintegrated": finish_integration(
            prepared, "unintegrated", embedding=_embedding(prepared, 8.0, 0), seed=0, **common
        ),
        "mixed": finish_integration(prepared, "harmony", embedding=_embedding(prepared, 0.0, 1), seed=0, **common),
        "genex_corrected_seed3": finish_integration(
            prepared,
            "genex",
            embedding=_embedding(prepared, 2.0, 2),
            seed=3,
            **{**common, "params": {"mode": "corrected"}},
        ),
    }


@pytest.fixture(scope="module")
def table(runs) -> pd.DataFrame:
    return scib_table(runs)


def test_scib_table_has_the_contract_columns_and_identities(table):
    assert list(table.columns) == SCIB_COLUMNS
    assert list(table["run"]) == ["unintegrated", "mixed", "genex_corrected_seed3"]
    assert list(table["method"]) == ["unintegrated", "harmony", "genex"]
    assert list(table["mode"]) == ["none", "none", "corrected"] and list(table["seed"]) == [0, 0, 3]
    metrics = table[SCIB_COLUMNS[4:]]
    assert np.isfinite(metrics.to_numpy(dtype=float)).all()
    assert ((metrics >= -1e-6) & (metrics <= 1 + 1e-6)).all().all()


def test_scib_aggregates_follow_the_formulas(table):
    bio = table[["isolated_labels", "nmi", "ari", "silhouette_label", "clisi"]].mean(axis=1)
    batch = table[["silhouette_batch", "ilisi", "kbet", "graph_connectivity", "pcr_comparison"]].mean(axis=1)
    batch_bras = table[["bras", "ilisi", "kbet", "graph_connectivity", "pcr_comparison"]].mean(axis=1)
    np.testing.assert_allclose(table["bio_conservation"], bio)
    np.testing.assert_allclose(table["batch_correction"], batch)
    np.testing.assert_allclose(table["total"], 0.6 * bio + 0.4 * batch)
    np.testing.assert_allclose(table["batch_correction_bras"], batch_bras)
    np.testing.assert_allclose(table["total_bras"], 0.6 * bio + 0.4 * batch_bras)


def test_a_mixed_embedding_scores_higher_on_batch_than_a_separated_one(table):
    scores = table.set_index("run")
    for column in ("silhouette_batch", "bras", "ilisi", "kbet", "pcr_comparison", "batch_correction"):
        assert scores.loc["mixed", column] > scores.loc["unintegrated", column], column
    assert scores.loc["unintegrated", "pcr_comparison"] == pytest.approx(0.0, abs=1e-6)
    # Once batches are mixed, the cell types are clean clusters; split by batch, they are not.
    assert scores.loc["mixed", "ari"] > 0.95 and scores.loc["unintegrated", "ari"] < scores.loc["mixed", "ari"]


def test_scib_table_needs_the_pre_integrated_run(runs):
    with pytest.raises(InputError, match="pre-integrated run 'unintegrated'"):
        scib_table({"mixed": runs["mixed"]})


def test_umap_table_is_seeded_with_one_block_per_run(runs):
    first = umap_table(runs, seed=0)
    assert list(first.columns) == ["run", "cell", "umap1", "umap2", "batch", "cell_type"]
    assert list(first["run"].unique()) == list(runs)
    for name, run in runs.items():
        assert list(first.loc[first["run"] == name, "cell"]) == list(run.obs_names)
    pd.testing.assert_frame_equal(first, umap_table(runs, seed=0))


def test_value_histogram_and_summary():
    prepared = _prepared()
    rng = np.random.default_rng(0)
    values = np.zeros(prepared.shape, dtype=np.float32)
    values[:, 0] = -rng.uniform(0.5, 1.0, prepared.n_obs)
    values[:, 0][0] = -1.0
    values[:, 1] = rng.uniform(0.5, 2.0, prepared.n_obs)
    values[:, 1][0] = 2.0
    run = finish_integration(prepared, "x", corrected=values, seconds=0, params={}, seed=0, output="full")
    histogram = value_histogram(run, bins=np.linspace(-2, 2, 5), run="x")
    assert list(histogram.columns) == ["run", "bin_left", "bin_right", "count"]
    assert histogram["count"].sum() == values.size
    wider = finish_integration(prepared, "y", corrected=values * 3, seconds=0, params={}, seed=0, output="full")
    edges = shared_bins([run, wider], n_bins=10)
    assert len(edges) == 11 and (edges[0], edges[-1]) == (-3.0, 6.0)
    summary = value_summary(run, "x")
    assert summary["pct_zero"] == pytest.approx(50.0) and summary["pct_negative"] == pytest.approx(25.0)
    assert (summary["min"], summary["max"]) == (-1.0, 2.0)
    assert summary["mean"] == pytest.approx(values.mean(dtype=np.float64))
    embed_only = finish_integration(
        prepared, "h", embedding=np.ones((prepared.n_obs, 2)), seconds=0, params={}, seed=0, output="embed"
    )
    with pytest.raises(InputError, match="corrected"):
        value_summary(embed_only, "h")
