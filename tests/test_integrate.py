"""Batch-correction baselines: the integration AnnData contract, cell order, determinism."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from deepexpr.errors import InputError
from deepexpr.integration.baselines import INTEGRATIONS, finish_integration, integrate


def _prepared(n_per_batch: int = 150, n_genes: int = 200, seed: int = 0) -> ad.AnnData:
    """3 batches x 3 cell types of NB counts with multiplicative batch effects, batches interleaved."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(0.6, 2.0, n_genes)
    type_factor = np.exp(rng.normal(0, 1.0, (3, n_genes)) * (rng.random((3, n_genes)) < 0.15))
    batch_factor = np.exp(rng.normal(0, 0.5, (3, n_genes)))
    batch = np.repeat(np.arange(3), n_per_batch)
    cell_type = rng.integers(0, 3, batch.size)
    means = base * type_factor[cell_type] * batch_factor[batch] * rng.lognormal(0, 0.3, batch.size)[:, None]
    counts = rng.negative_binomial(5, 5 / (5 + means)).astype(np.float32)
    order = rng.permutation(batch.size)  # interleave batches: integrations must keep this order
    counts, batch, cell_type = counts[order], batch[order], cell_type[order]
    obs = pd.DataFrame(
        {"batch": [f"b{b}" for b in batch], "cell_type": [f"t{t}" for t in cell_type]},
        index=[f"cell{i}" for i in range(batch.size)],
    )
    obs["n_counts"] = counts.sum(axis=1)
    adata = ad.AnnData(sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))
    adata.layers["counts"] = adata.X.copy()
    adata.X = sp.csr_matrix(np.log1p(counts / obs["n_counts"].to_numpy()[:, None] * 1e4), dtype=np.float32)
    return adata


@pytest.fixture(scope="module")
def prepared() -> ad.AnnData:
    return _prepared()


def _check_contract(result: ad.AnnData, prepared: ad.AnnData, method: str, output: str) -> None:
    assert result.X is None
    assert result.obs_names.equals(prepared.obs_names) and result.var_names.equals(prepared.var_names)
    pd.testing.assert_frame_equal(result.obs, prepared.obs)
    embedding = result.obsm["X_emb"]
    assert embedding.dtype == np.float32 and embedding.shape[0] == prepared.n_obs and np.isfinite(embedding).all()
    info = result.uns["integration"]
    assert info["method"] == method and info["output"] == output and info["seed"] == 0 and info["seconds"] > 0
    if output == "full":
        assert result.layers["corrected"].shape == prepared.shape
        assert embedding.shape[1] == 50


@pytest.mark.parametrize(
    "method,output", [("unintegrated", "full"), ("combat", "full"), ("harmony", "embed"), ("scanorama", "embed")]
)
def test_baselines_follow_the_contract_and_write(prepared, method, output, tmp_path):
    result = integrate(method, prepared, seed=0)
    _check_contract(result, prepared, method, output)
    if method == "unintegrated":
        np.testing.assert_array_equal(result.layers["corrected"], prepared.X.toarray())
    if method == "combat":
        assert not np.allclose(result.layers["corrected"], prepared.X.toarray())
    path = tmp_path / f"{method}.h5ad"
    result.write_h5ad(path)
    back = ad.read_h5ad(path)
    assert back.uns["integration"]["method"] == method
    np.testing.assert_array_equal(back.obsm["X_emb"], result.obsm["X_emb"])
    again = integrate(method, prepared, seed=0)
    np.testing.assert_array_equal(again.obsm["X_emb"], result.obsm["X_emb"])  # same seed, same numbers


def test_harmony_records_the_penalties_it_used_and_why_it_stopped(prepared):
    params = integrate("harmony", prepared, seed=0).uns["integration"]["params"]
    assert params["theta"] == 2.0 and "estimated" in params["lamb"] and params["n_comps"] == 50
    assert params["max_iter"] == 100 and params["stop_reason"] == "converged" and 1 <= params["iterations"] < 100
    bounded = integrate("harmony", prepared, seed=0, params={"max_iter": 1}).uns["integration"]["params"]
    assert bounded["iterations"] == 1 and bounded["stop_reason"] == "max_iter"


def test_scanorama_puts_cells_back_in_their_order(prepared):
    """Scanorama groups cells by batch; a batch-sorted copy must give the same per-cell embedding."""
    by_batch = np.argsort(prepared.obs["batch"].to_numpy(), kind="stable")
    shuffled = integrate("scanorama", prepared, seed=0).obsm["X_emb"]
    sorted_first = integrate("scanorama", prepared[by_batch].copy(), seed=0).obsm["X_emb"]
    np.testing.assert_allclose(shuffled[by_batch], sorted_first, rtol=1e-4, atol=1e-5)


def test_scvi_trains_briefly_and_keeps_a_corrected_layer(prepared):
    import torch

    threads = torch.get_num_threads()
    result = integrate("scvi", prepared, seed=0, params={"max_epochs": 2, "threads": 1, "device": "cpu"})
    torch.set_num_threads(threads)
    _check_contract(result, prepared, "scvi", "embed")
    params = result.uns["integration"]["params"]
    assert result.obsm["X_emb"].shape == (prepared.n_obs, 10)
    # scvi-tools' own mini-batch of 128 by default; 2 epochs is a cap below its rule, and says so
    assert params["epochs_trained"] == 2 and params["batch_size"] == 128 and params["threads"] == 1
    assert params["epochs_capped"] and params["epoch_rule"] == 400
    corrected = result.layers["corrected"]
    assert corrected.shape == prepared.shape and (corrected >= 0).all()
    # log1p of expression normalised to 1e4 per cell: each row sums back to ~1e4.
    np.testing.assert_allclose(np.expm1(corrected.astype(np.float64)).sum(axis=1), 1e4, rtol=1e-3)


def test_finish_integration_validates_its_inputs(prepared):
    common = {"seconds": 0.0, "params": {}, "seed": 0}
    with pytest.raises(ValueError, match="full output"):
        finish_integration(prepared, "x", embedding=np.zeros((prepared.n_obs, 2)), output="full", **common)
    with pytest.raises(ValueError, match="shape"):
        finish_integration(prepared, "x", corrected=np.zeros((3, 3)), output="full", **common)
    bad = np.zeros(prepared.shape)
    bad[0, 0] = np.nan
    with pytest.raises(FloatingPointError):
        finish_integration(prepared, "x", corrected=bad, output="full", **common)
    result = finish_integration(
        prepared, "x", embedding=np.ones((prepared.n_obs, 4)), output="embed", **{**common, "params": {"a": None}}
    )
    assert result.uns["integration"]["params"] == {"a": "none"} and "corrected" not in result.layers


def test_bad_requests_name_what_is_wrong(prepared):
    with pytest.raises(InputError, match="unknown method 'mnn'"):
        integrate("mnn", prepared)
    with pytest.raises(InputError, match="unknown keys \\['knn'\\]"):
        integrate("combat", prepared, params={"knn": 5})
    one_batch = prepared.copy()
    one_batch.obs["batch"] = "b0"
    with pytest.raises(InputError, match="single level"):
        integrate("harmony", one_batch)
    assert set(INTEGRATIONS) == {"unintegrated", "combat", "harmony", "scanorama", "scvi"}
