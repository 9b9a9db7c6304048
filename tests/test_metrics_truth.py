"""Truth metrics of a run's corrected values against the batch-free simulation truth."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from deepexpr.errors import InputError
from deepexpr.integration.baselines import finish_integration
from deepexpr.evaluate.truth import TRUTH_COLUMNS, TRUTH_RUN, log_normalised_truth, truth_metrics, truth_reference_run
from deepexpr.metrics.truth import de_recovery


def _truth_and_prepared(seed: int = 0):
    """Truth over 60 genes, 300 cells in 2 cell types (genes g0-g4 up 5x in t1); prepared = 40 HVGs, 290 cells."""
    rng = np.random.default_rng(seed)
    n_cells, n_genes = 300, 60
    cell_type = np.where(np.arange(n_cells) % 3 == 0, "t1", "t0")
    means = np.full((n_cells, n_genes), 3.0)
    means[cell_type == "t1", :5] *= 5
    counts = rng.poisson(means).astype(np.float32)
    genes = [f"g{i}" for i in range(n_genes)]
    obs = pd.DataFrame(
        {"batch": np.where(np.arange(n_cells) % 2, "b1", "b0"), "cell_type": cell_type},
        index=[f"c{i}" for i in range(n_cells)],
    )
    # The "batch effect" touched g20-g29.
    var = pd.DataFrame({"de_gene": np.arange(n_genes) < 5, "batch_affected": (np.arange(n_genes) // 10) == 2}, index=genes)
    truth = ad.AnnData(sp.csr_matrix(counts), obs=obs.copy(), var=var)
    keep_cells, keep_genes = obs.index[10:], genes[:40]
    prepared = ad.AnnData(obs=obs.loc[keep_cells].copy(), var=pd.DataFrame(index=keep_genes))
    return truth, prepared


@pytest.fixture(scope="module")
def data():
    return _truth_and_prepared()


def _run(prepared, corrected, method="genex"):
    return finish_integration(prepared, method, corrected=corrected, seconds=0, params={}, seed=0, output="full")


def test_truth_is_normalised_over_all_its_genes(data):
    truth, prepared = data
    expected = log_normalised_truth(truth, prepared.obs_names, prepared.var_names)
    counts = truth.X.toarray()
    manual = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4)[10:, :40]
    np.testing.assert_allclose(expected, manual, rtol=1e-6)


def test_truth_reference_run_is_the_truth_of_the_prepared_cells(data):
    truth, prepared = data
    reference = truth_reference_run(truth, prepared, seed=0)
    assert reference.uns["integration"]["method"] == TRUTH_RUN and reference.uns["integration"]["output"] == "full"
    assert reference.obs_names.equals(prepared.obs_names) and reference.var_names.equals(prepared.var_names)
    np.testing.assert_allclose(
        reference.layers["corrected"], log_normalised_truth(truth, prepared.obs_names, prepared.var_names), rtol=1e-6
    )
    assert reference.obsm["X_emb"].shape[0] == prepared.n_obs


def test_corrected_equal_to_truth_scores_perfectly(data):
    truth, prepared = data
    expected = log_normalised_truth(truth, prepared.obs_names, prepared.var_names)
    row, per_gene, sample = truth_metrics(
        _run(prepared, expected), truth, prepared, seed=0, run="genex_corrected_seed0"
    )
    assert set(TRUTH_COLUMNS) == set(row)
    assert row["run"] == "genex_corrected_seed0" and row["method"] == "genex"
    assert row["pearson_median"] == pytest.approx(1.0) and row["mse"] == pytest.approx(0.0, abs=1e-10)
    assert row["w1"] == pytest.approx(0.0, abs=1e-6) and row["sample_pearson"] == pytest.approx(1.0)
    assert row["n_de_true"] == 5 and row["n_genes_constant"] == 0
    assert row["de_recall"] == 1.0 and row["de_auprc"] == pytest.approx(1.0)
    assert list(per_gene.columns) == ["run", "gene", "pearson", "w1", "mse"] and len(per_gene) == 40
    assert list(sample.columns) == ["run", "truth", "corrected"]
    assert len(sample) == 20_000 or len(sample) == prepared.n_obs * prepared.n_vars


def test_noise_lowers_the_scores_and_the_sample_is_seeded(data):
    truth, prepared = data
    expected = log_normalised_truth(truth, prepared.obs_names, prepared.var_names)
    noisy = expected + np.random.default_rng(1).normal(0, 1.0, expected.shape)
    noisy[:, 7] = 1.0  # a constant gene has no Pearson r
    row, per_gene, sample = truth_metrics(_run(prepared, noisy), truth, prepared, seed=0, run="noisy")
    assert row["pearson_median"] < 0.9 and row["mse"] > 0.5 and row["w1"] > 0
    assert row["n_genes_constant"] == 1 and np.isnan(per_gene.loc[7, "pearson"])
    assert row["pearson_median_batch_genes"] == pytest.approx(per_gene.loc[20:29, "pearson"].median())
    only_batch_genes = expected.copy()
    only_batch_genes[:, 20:30] = noisy[:, 20:30]
    row, _, _ = truth_metrics(_run(prepared, only_batch_genes), truth, prepared, seed=0, run="noisy")
    assert row["pearson_median"] == pytest.approx(1.0) and row["pearson_median_batch_genes"] < 0.9
    _, _, same = truth_metrics(_run(prepared, noisy), truth, prepared, seed=0, run="noisy")
    pd.testing.assert_frame_equal(sample, same)


def test_de_recovery_counts_calls_in_any_cell_type():
    wilcoxon = pd.DataFrame(
        {
            "cell_type": ["a", "a", "a", "b", "b", "b"],
            "gene": ["g0", "g1", "g2"] * 2,
            "score": [9.0, 1.0, 0.5, -9.0, 4.0, 0.1],
            "called": [True, False, False, True, True, False],
        }
    )
    result = de_recovery(wilcoxon, pd.Series([True, False, True], index=["g0", "g1", "g2"]))
    assert (result["n_de_called"], result["n_de_true"]) == (2, 2)
    assert result["de_precision"] == 0.5 and result["de_recall"] == 0.5 and result["de_f1"] == 0.5
    assert result["de_auprc"] == pytest.approx((1.0 + 2 / 3) / 2)  # ranking g0 (9) > g1 (4) > g2 (0.5)


def test_missing_truth_genes_are_named(data):
    truth, prepared = data
    with pytest.raises(InputError, match="absent from the truth"):
        log_normalised_truth(truth[:, :30], prepared.obs_names, prepared.var_names)
