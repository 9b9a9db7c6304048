"""Planted gene modules in the single-cell simulator: off by default (byte-identical output), truth when on."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from deepexpr.data.singlecell.simulate import simulate_singlecell
from deepexpr.errors import InputError


PRESET_ONLY_KEYS = {"preset", "batch_cell_type_scale", "composition_concentration", "absent_cell_type"}


def _digest(raw, truth) -> str:
    digest = hashlib.sha256()
    for matrix in (raw.X, truth.X):
        for part in (matrix.data, matrix.indices, matrix.indptr):
            digest.update(part.tobytes())
    digest.update(truth.layers["true_means"].tobytes())
    # The preset keys (added after these digests were pinned) are left out of the provenance.
    provenance = {k: v for k, v in raw.uns["deepexpr"]["simulate"].items() if k not in PRESET_ONLY_KEYS}
    digest.update(repr(sorted(provenance.items())).encode())
    digest.update(truth.var.to_csv().encode())
    digest.update(raw.obs.to_csv().encode())
    return digest.hexdigest()


# Digests of the simulator before modules existed (commit b0eb822), with the preset of that
# simulator (easy): the optional parameters must not change the simulated datasets.
@pytest.mark.parametrize(
    ("params", "seed", "expected"),
    [
        (
            {"preset": "easy", "n_genes": 120, "batch_cells": [40, 60]},
            3,
            "d88aa127e45081f5e92d1a16ea8173360d8f1f6aea17407bad16c78b4618e076",
        ),
        (
            {"preset": "easy", "design": "donors", "n_genes": 100, "cells_per_donor": 20, "dropout": True},
            5,
            "9d1b62f21c3017ed5d12040f0cc976035eda955e2954e4722314557f3e146566",
        ),
    ],
)
@pytest.mark.parametrize("modules", [None, {"n_modules": 0}])
def test_without_modules_the_output_is_unchanged(params, seed, expected, modules):
    raw, truth = simulate_singlecell(params, seed, modules=modules)
    assert _digest(raw, truth) == expected
    assert "simulate_modules" not in raw.uns["deepexpr"] and "module" not in truth.var


def test_planted_modules_have_truth_and_correlated_members():
    params = {"n_genes": 200, "batch_cells": [250, 250], "batch_gene_prob": 0.0}
    raw, truth = simulate_singlecell(params, 1, modules={"n_modules": 4, "module_size": 15, "hubs_per_module": 2})
    module, hub = truth.var["module"].to_numpy(), truth.var["hub_gene"].to_numpy()
    assert np.bincount(module[module >= 0]).tolist() == [15] * 4
    assert hub.sum() == 8 and (module[hub] >= 0).all()
    assert truth.obsm["module_signal"].shape == (500, 4)
    # the other draws are those of the module-free run: same cells, types and library sizes
    plain, _ = simulate_singlecell(params, 1)
    assert raw.obs.equals(plain.obs)
    x = np.log1p(raw.X.toarray() / raw.X.sum(axis=1).A * 1e4)
    corr = np.corrcoef(x.T)
    same = (module[:, None] == module[None, :]) & (module[:, None] >= 0) & ~np.eye(len(module), dtype=bool)
    other = (module[:, None] != module[None, :]) & (module[:, None] >= 0) & (module[None, :] >= 0)
    assert corr[same].mean() > corr[other].mean() + 0.1


@pytest.mark.parametrize(
    ("modules", "key"),
    [
        ({"n_modulez": 1}, "n_modulez"),
        ({"n_modules": 2, "hubs_per_module": 20}, "hubs_per_module"),
        ({"n_modules": 50}, "n_modules"),
    ],
)
def test_bad_module_parameters_name_the_key(modules, key):
    with pytest.raises(InputError, match=f"simulate.modules.{key}"):
        simulate_singlecell({"n_genes": 100, "batch_cells": [20, 20]}, 0, modules=modules)
