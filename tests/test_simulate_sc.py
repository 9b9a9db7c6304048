"""Splat-like single-cell simulator: contract, determinism, exact batch-free truth, donors design,
and the two presets (easy: one batch factor per gene; realistic: cell-type-specific batch factors,
unequal composition, shallow libraries, dropout)."""

from __future__ import annotations


import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
import yaml

from deepexpr.data.singlecell.simulate import DEFAULTS, PRESETS, simulate_singlecell, write_simulation
from deepexpr.errors import InputError

# The tests of the Splat core run on the easy preset (one factor per gene and batch); the realistic
# preset has its own tests below.
SMALL = {"preset": "easy", "n_genes": 300, "batch_cells": [150, 200, 250]}
DONORS = {
    "preset": "easy",
    "design": "donors",
    "n_genes": 400,
    "cells_per_donor": 80,
    "donors_per_condition": 3,
    "sex_de_prob": 0.05,
}
REALISTIC = {"preset": "realistic", "n_genes": 300, "batch_cells": [300, 300, 300]}


@pytest.fixture(scope="module")
def groups():
    return simulate_singlecell(SMALL, seed=3)


@pytest.fixture(scope="module")
def donors():
    return simulate_singlecell(DONORS, seed=5)


def _dense(matrix) -> np.ndarray:
    return matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


def test_defaults_match_the_config_schema(repo_root):
    schema = yaml.safe_load((repo_root / "config" / "schema.yaml").read_text())
    properties = dict(schema["$defs"]["simulate_singlecell"]["properties"])
    # planted gene modules are their own argument (simulate_singlecell(..., modules=)), absent by default
    assert "default" not in properties.pop("modules")
    assert set(properties) == set(DEFAULTS)
    assert {k: v["default"] for k, v in properties.items()} == DEFAULTS
    assert properties["preset"]["enum"] == sorted(PRESETS)
    # every key a preset sets is left to the preset (null) in the defaults
    assert all(DEFAULTS[key] is None for preset in PRESETS.values() for key in preset)


def test_raw_and_truth_follow_the_contract(groups):
    raw, truth = groups
    assert raw.shape == truth.shape == (600, 300)
    assert list(raw.obs_names) == list(truth.obs_names) and list(raw.var_names) == list(truth.var_names)
    for adata in (raw, truth):
        assert sp.isspmatrix_csr(adata.X) or isinstance(adata.X, sp.csr_array)
        values = adata.X.data
        # stored entries are whole counts >= 1: no negative value and no explicit zero in the csr
        assert np.all(values == np.round(values)) and values.min() >= 1
    assert (raw.layers["counts"] != raw.X).nnz == 0
    assert list(raw.obs.columns) == ["batch", "cell_type"]
    assert raw.obs["batch"].value_counts().to_dict() == {"batch1": 150, "batch2": 200, "batch3": 250}
    assert set(raw.obs["cell_type"]) <= set(DEFAULTS["cell_types"])
    means = truth.layers["true_means"]
    assert isinstance(means, np.ndarray) and means.dtype == np.float32 and means.shape == truth.shape
    expected = {"de_gene", "batch_affected"} | {f"batch_factor_batch{i}" for i in (1, 2, 3)}
    expected |= {f"de_factor_{t}" for t in DEFAULTS["cell_types"]}
    assert expected <= set(truth.var.columns)
    assert raw.uns["deepexpr"]["simulated"] is True and raw.uns["deepexpr"]["seed"] == 3


def test_same_seed_same_data_other_seed_other_data(groups):
    raw, truth = groups
    raw2, truth2 = simulate_singlecell(SMALL, seed=3)
    assert (raw.X != raw2.X).nnz == 0 and (truth.X != truth2.X).nnz == 0
    np.testing.assert_array_equal(truth.layers["true_means"], truth2.layers["true_means"])
    assert list(raw.obs["cell_type"]) == list(raw2.obs["cell_type"])
    raw3, _ = simulate_singlecell(SMALL, seed=4)
    assert (raw.X != raw3.X).nnz > 0


def test_counts_differ_from_truth_only_through_the_batch_effect(groups):
    raw, truth = groups
    observed, clean = _dense(raw.X), _dense(truth.X)
    affected = truth.var["batch_affected"].to_numpy()
    assert 0.2 < affected.mean() < 0.4  # batch_gene_prob 0.3
    np.testing.assert_array_equal(observed[:, ~affected], clean[:, ~affected])
    assert (observed[:, affected] != clean[:, affected]).mean() > 0.3
    for name in raw.obs["batch"].cat.categories:
        factor = truth.var[f"batch_factor_{name}"].to_numpy()
        assert np.all(factor[~affected] == 1.0) and np.all(factor[affected] != 1.0)
        cells = (raw.obs["batch"] == name).to_numpy()
        # Observed / batch-free totals per gene follow the planted factor.
        ratio = (observed[cells].sum(0) + 1) / (clean[cells].sum(0) + 1)
        high = affected & (clean[cells].sum(0) > 500)
        assert np.corrcoef(np.log(ratio[high]), np.log(factor[high]))[0, 1] > 0.95


def test_de_genes_are_flagged_and_change_cell_type_means(groups):
    _, truth = groups
    factors = truth.var[[f"de_factor_{t}" for t in DEFAULTS["cell_types"]]].to_numpy()
    np.testing.assert_array_equal(truth.var["de_gene"].to_numpy(), (factors != 1).any(axis=1))
    assert 0.3 < truth.var["de_gene"].mean() < 0.6  # 1 - 0.9**6 = 0.47
    cell_type = truth.obs["cell_type"].to_numpy()
    props = truth.layers["true_means"] / truth.layers["true_means"].sum(axis=1, keepdims=True)
    t_cells = props[cell_type == "T_cell"].mean(0)
    others = props[cell_type == "CD14_mono"].mean(0)
    log_ratio = np.log(t_cells / others)
    planted = np.log(truth.var["de_factor_T_cell"] / truth.var["de_factor_CD14_mono"]).to_numpy()
    assert np.corrcoef(log_ratio, planted)[0, 1] > 0.8


def test_batch_and_cell_types_are_visible_and_truth_is_batch_free(groups):
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score

    raw, truth = groups

    def pcs(counts):
        x = _dense(counts)
        x = np.log1p(x / x.sum(1, keepdims=True) * 1e4)
        return PCA(10, random_state=0).fit_transform(x - x.mean(0))

    observed, clean = pcs(raw.X), pcs(truth.X)
    assert silhouette_score(observed, raw.obs["cell_type"]) > 0.2
    assert silhouette_score(observed, raw.obs["batch"]) > silhouette_score(clean, raw.obs["batch"]) + 0.05


def test_donors_design_nests_donors_in_conditions(donors):
    raw, truth = donors
    obs = raw.obs
    assert list(obs.columns) == ["batch", "condition", "donor", "sex", "cell_type"]
    assert raw.n_obs == 3 * 3 * 80
    assert (obs["batch"].astype(str) == obs["donor"].astype(str)).all()
    per_donor = obs.groupby("donor", observed=True).agg({"condition": "nunique", "sex": "nunique", "cell_type": "size"})
    assert (per_donor["condition"] == 1).all() and (per_donor["sex"] == 1).all()
    assert (per_donor["cell_type"] == 80).all()
    sexes = obs.drop_duplicates("donor").groupby("condition", observed=True)["sex"].value_counts().unstack()
    assert (abs(sexes["female"] - sexes["male"]) <= 1).all()
    var = truth.var
    assert {"condition_affected", "sex_affected"} <= set(var.columns)
    assert {f"batch_factor_{d}" for d in obs["donor"].cat.categories} <= set(var.columns)
    # The reference condition has no effect; the effect grows with severity: mild = critical ** (1/2).
    np.testing.assert_array_equal(var["condition_factor_healthy"], 1.0)
    np.testing.assert_allclose(var["condition_factor_mild"] ** 2, var["condition_factor_critical"])
    np.testing.assert_array_equal(var["condition_affected"], var["condition_factor_critical"] != 1)
    np.testing.assert_array_equal(var["sex_affected"], var["sex_factor_male"] != 1)
    assert var["condition_affected"].sum() > 5 and var["sex_affected"].sum() > 5
    # Truth keeps the biology: condition genes still differ between healthy and critical batch-free cells.
    means = truth.layers["true_means"] / truth.layers["true_means"].sum(1, keepdims=True)
    critical = means[(obs["condition"] == "critical").to_numpy()].mean(0)
    healthy = means[(obs["condition"] == "healthy").to_numpy()].mean(0)
    genes = var["condition_affected"].to_numpy()
    planted = np.log(var["condition_factor_critical"].to_numpy()[genes])
    assert np.corrcoef(np.log(critical[genes] / healthy[genes]), planted)[0, 1] > 0.8


def test_dropout_adds_zeros_in_both_and_keeps_untouched_genes_equal():
    params = {**SMALL, "dropout": True, "dropout_mid": 3.0, "dropout_shape": -1.0}
    raw, truth = simulate_singlecell(params, seed=3)
    plain, _ = simulate_singlecell(SMALL, seed=3)
    assert (_dense(raw.X) == 0).mean() > (_dense(plain.X) == 0).mean() + 0.05
    affected = truth.var["batch_affected"].to_numpy()
    np.testing.assert_array_equal(_dense(raw.X)[:, ~affected], _dense(truth.X)[:, ~affected])


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"n_gene": 10}, ["simulate.n_gene", "unknown"]),
        ({"cell_type_prob": [0.5, 0.5]}, ["cell_type_prob", "2 probabilities for 6 cell_types"]),
        ({"cell_types": ["a", "b"], "cell_type_prob": [0.5, 0.6]}, ["cell_type_prob", "summing to 1"]),
        ({"batches": ["x"]}, ["simulate.batches", "1 names for 3 batch_cells"]),
        ({"design": "pairs"}, ["simulate.design", "'pairs'"]),
        ({"design": "donors", "conditions": ["healthy"]}, ["simulate.conditions", "at least 2"]),
        ({"preset": "hard"}, ["simulate.preset", "'hard'"]),
        ({"absent_cell_type": "Tcell"}, ["simulate.absent_cell_type", "'Tcell'"]),
        ({"composition_concentration": -1}, ["simulate.composition_concentration", "non-negative"]),
    ],
)
def test_bad_parameters_raise_input_error(params, words):
    with pytest.raises(InputError) as error:
        simulate_singlecell(params, seed=0)
    for word in words:
        assert word in str(error.value)


def test_named_batches_and_write_round_trip(tmp_path):
    raw, truth = simulate_singlecell({"preset": "easy", "n_genes": 50, "batch_cells": [20, 30], "batches": ["10x_v2", "10x_v3"]}, seed=1)
    assert list(raw.obs["batch"].cat.categories) == ["10x_v2", "10x_v3"]
    write_simulation(raw, truth, tmp_path / "raw.h5ad", tmp_path / "truth.h5ad")
    raw_back, truth_back = ad.read_h5ad(tmp_path / "raw.h5ad"), ad.read_h5ad(tmp_path / "truth.h5ad")
    assert (raw_back.X != raw.X).nnz == 0 and (truth_back.X != truth.X).nnz == 0
    np.testing.assert_array_equal(truth_back.layers["true_means"], truth.layers["true_means"])
    assert "batch_factor_10x_v3" in truth_back.var.columns


@pytest.fixture(scope="module")
def realistic():
    return simulate_singlecell(REALISTIC, seed=3)


def test_realistic_is_the_default_preset_and_deterministic(realistic):
    raw, truth = realistic
    assert raw.uns["deepexpr"]["simulate"]["preset"] == "realistic"
    default, _ = simulate_singlecell({k: v for k, v in REALISTIC.items() if k != "preset"}, seed=3)
    again, _ = simulate_singlecell(REALISTIC, seed=3)
    assert (default.X != raw.X).nnz == 0 and (again.X != raw.X).nnz == 0
    assert list(again.obs["cell_type"]) == list(raw.obs["cell_type"])


def test_realistic_libraries_are_shallow_and_drop_out(realistic):
    raw, truth = realistic
    library = np.asarray(truth.layers["true_means"].sum(axis=1)).ravel()
    assert 0.9 < ((library > 1500) & (library < 15000)).mean()
    assert 3000 < np.median(library) < 7000
    easy, _ = simulate_singlecell({**REALISTIC, "preset": "easy"}, seed=3)
    assert np.median(np.asarray(easy.X.sum(axis=1)).ravel()) > 30000  # easy: ~60k UMIs per cell
    # dropout removes counts the Poisson draw made: more zeros than the same shallow libraries without it
    undropped, _ = simulate_singlecell({**REALISTIC, "dropout": False}, seed=3)
    assert (_dense(raw.X) == 0).mean() > (_dense(undropped.X) == 0).mean() + 0.05


def test_realistic_composition_differs_by_batch_with_one_type_absent(realistic):
    raw, _ = realistic
    counts = raw.obs.groupby("batch", observed=False)["cell_type"].value_counts().unstack()
    share = counts.div(counts.sum(axis=1), axis=0)
    absent = DEFAULTS["cell_types"][1]  # "second": NK
    assert counts.loc["batch3", absent] == 0 and (counts.loc[["batch1", "batch2"], absent] > 0).all()
    assert (share.max() - share.min()).max() > 0.1  # not one shared composition
    # a single batch keeps every cell type
    single, _ = simulate_singlecell({"n_genes": 100, "batch_cells": [400]}, seed=0)
    assert single.obs["cell_type"].nunique() == len(DEFAULTS["cell_types"])


def test_realistic_batch_factors_depend_on_the_cell_type(realistic):
    raw, truth = realistic
    observed, clean = _dense(raw.X), _dense(truth.X)
    affected = truth.var["batch_affected"].to_numpy()
    # genes no batch touches stay identical to the truth, dropout included
    np.testing.assert_array_equal(observed[:, ~affected], clean[:, ~affected])
    types = DEFAULTS["cell_types"]
    by_type = truth.var[[f"batch_factor_batch1_{t}" for t in types]].to_numpy()
    assert np.all(by_type[~affected] == 1.0)
    spread = np.log(by_type[affected]).std(axis=1)
    assert np.median(spread) > 0.25  # batch_cell_type_scale 0.5
    # within one batch and cell type the observed/truth ratio follows that pair's factor, not the batch's
    cells = ((raw.obs["batch"] == "batch1") & (raw.obs["cell_type"] == "T_cell")).to_numpy()
    ratio = (observed[cells].sum(0) + 1) / (clean[cells].sum(0) + 1)
    high = affected & (clean[cells].sum(0) > 200)
    specific = np.log(truth.var["batch_factor_batch1_T_cell"].to_numpy()[high])
    shared = np.log(truth.var["batch_factor_batch1"].to_numpy()[high])
    assert np.corrcoef(np.log(ratio[high]), specific)[0, 1] > 0.9
    assert np.corrcoef(np.log(ratio[high]), specific)[0, 1] > np.corrcoef(np.log(ratio[high]), shared)[0, 1] + 0.1


def test_realistic_donors_keep_the_nested_design():
    raw, truth = simulate_singlecell({**DONORS, "preset": "realistic"}, seed=5)
    per_donor = raw.obs.groupby("donor", observed=True).agg({"condition": "nunique", "cell_type": "size"})
    assert (per_donor["condition"] == 1).all() and (per_donor["cell_type"] == 80).all()
    last = raw.obs["donor"].cat.categories[-1]
    assert (raw.obs.loc[raw.obs["donor"] == last, "cell_type"] != DEFAULTS["cell_types"][1]).all()
    assert truth.var["condition_affected"].sum() > 5


def test_modules_work_with_the_realistic_preset():
    params = {**REALISTIC, "n_genes": 200, "batch_cells": [300, 300], "batch_gene_prob": 0.0}
    raw, truth = simulate_singlecell(params, 1, modules={"n_modules": 3, "module_size": 15, "module_sd": 1.2})
    module = truth.var["module"].to_numpy()
    assert np.bincount(module[module >= 0]).tolist() == [15] * 3
    plain, _ = simulate_singlecell(params, 1)
    assert raw.obs.equals(plain.obs)
    x = np.log1p(raw.X.toarray() / raw.X.sum(axis=1).A * 1e4)
    corr = np.corrcoef(x.T)
    same = (module[:, None] == module[None, :]) & (module[:, None] >= 0) & ~np.eye(len(module), dtype=bool)
    other = (module[:, None] != module[None, :]) & (module[:, None] >= 0) & (module[None, :] >= 0)
    assert corr[same].mean() > corr[other].mean() + 0.05
