"""Integrated Gradients on the GENEX critic: completeness, baselines, rank table, AUROC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from deepexpr.errors import InputError
from deepexpr.interpret.attribution import CELL_COLUMNS, RANK_COLUMNS, attribution_auroc, explain_summary, rank_genes
from deepexpr.interpret.genex import baseline_profile, explain_covariate
from deepexpr.models.genex import GENEX
from test_genex import TINY, tiny_adata


@pytest.fixture(scope="module")
def model():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    adata = tiny_adata(n_cells=200, n_genes=30)
    GENEX.setup_anndata(adata, explain_keys=["sex"])
    trained = GENEX(adata, seed=0, **TINY)
    trained.train(max_epochs=3, device="cpu")
    yield trained
    torch.set_num_threads(threads)


def test_completeness_gap_small_and_reported(model):
    cells, attributions = explain_covariate(model, "batch", baseline="batch_mean", n_steps=64)
    assert list(cells.columns) == CELL_COLUMNS and attributions.shape == (200, 30)
    assert cells["cell"].tolist() == [f"cell{i}" for i in range(200)]
    assert set(cells["level"]) == {"b1", "b2", "b3"}
    # Each cell is explained toward its own batch; attributions add up to F(x) - F(x0).
    gap = np.abs(cells["attribution_sum"] - (cells["target_logit"] - cells["baseline_logit"]))
    np.testing.assert_allclose(cells["delta"], gap)
    assert cells["relative_delta"].median() < 0.05
    summary = explain_summary(cells, "batch_mean", 64)
    assert summary["n_cells"] == 200 and summary["n_flagged"] == int((cells["relative_delta"] > 0.05).sum())
    # The critic is back in training mode afterwards only if it was before.
    assert not model.module.training


def test_baselines_target_levels_and_subsets(model):
    np.testing.assert_array_equal(baseline_profile(model, "zeros"), np.zeros(30, dtype=np.float32))
    reference = baseline_profile(model, "reference_batch_mean", reference_level="b1")
    mask = model.batch_codes == model.batches.index("b1")
    np.testing.assert_allclose(reference, model.source.rows(np.flatnonzero(mask)).mean(axis=0), rtol=1e-5)
    cells, attributions = explain_covariate(
        model, "sex", baseline="reference_batch_mean", reference_level="b1", max_cells=40, target_level="male", seed=3
    )
    assert len(cells) == 40 and attributions.shape == (40, 30) and set(cells["level"]) == {"male"}
    again, _ = explain_covariate(
        model, "sex", baseline="reference_batch_mean", reference_level="b1", max_cells=40, target_level="male", seed=3
    )
    pd.testing.assert_frame_equal(cells, again)
    with pytest.raises(InputError, match="baseline"):
        explain_covariate(model, "batch", baseline="median")
    with pytest.raises(InputError, match="reference_level"):
        explain_covariate(model, "batch", baseline="reference_batch_mean")
    with pytest.raises(InputError, match="64 steps"):
        explain_covariate(model, "batch", n_steps=10)
    with pytest.raises(InputError, match="no critic head"):
        explain_covariate(model, "cell_type")


def test_faithful_attribution_runs(model):
    cells, attributions = explain_covariate(model, "batch", faithful=True, max_cells=50)
    assert attributions.shape == (50, 30) and np.isfinite(attributions).all()
    assert cells["delta"].isna().all()  # no per-cell completeness in the original's summed output


def test_rank_table_format_and_auroc(model):
    cells, attributions = explain_covariate(model, "batch", n_steps=64)
    obs = tiny_adata(n_cells=200, n_genes=30).obs.assign(level=cells["level"].to_numpy())
    ranked = rank_genes(attributions, obs, "batch", model.source.var_names, level_key="level")
    assert list(ranked.columns) == RANK_COLUMNS
    groups = ranked.groupby(["level", "cell_type"])
    assert groups.size().eq(30).all()
    assert groups["rank"].apply(lambda r: sorted(r) == list(range(1, 31))).all()
    top = ranked[ranked["rank"] == 1].set_index(["level", "cell_type"])["abs_attribution"]
    assert top.to_dict() == groups["abs_attribution"].max().to_dict()
    all_rows = ranked[ranked["cell_type"] == "all"]
    assert all_rows.groupby("level")["n_cells"].first().sum() == 200
    assert set(ranked["cell_type"]) == {"all", "T", "B"}
    genes = pd.Index(model.source.var_names)
    truth = pd.Series(False, index=genes)
    truth.iloc[:10] = True  # the planted batch shift
    assert 0.0 <= attribution_auroc(ranked, truth) <= 1.0
    perfect = pd.Series(np.where(truth, 2.0, 1.0), index=genes)
    assert attribution_auroc(perfect, truth) == 1.0
    with pytest.raises(InputError, match="shape"):
        rank_genes(attributions[:, :5], obs, "batch", model.source.var_names, level_key="level")
