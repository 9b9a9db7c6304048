"""GENEX: setup checks, training outputs, determinism, checkpoint resume, save/load, streaming."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import deepexpr.models.genex.model as genex_module
from deepexpr.data.stream import BalancedSampler, MatrixSource, write_backed_csr
from deepexpr.errors import InputError
from deepexpr.models.genex import GENEX
from deepexpr.models.genex.model import HISTORY_COLUMNS
from deepexpr.models.genex.settings import MODE_DEFAULTS, SWITCHES

TINY = {"hidden": (32, 16), "latent_dim": 8, "embed_dim": 4, "batch_size": 64}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (several threads spin on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_adata(n_cells: int = 300, n_genes: int = 50, seed: int = 0) -> ad.AnnData:
    """Log-normalised csr data with 3 batches (a shift on the first 10 genes), 2 cell types, sex."""
    rng = np.random.default_rng(seed)
    batch = rng.choice(["b1", "b2", "b3"], size=n_cells, p=[0.2, 0.3, 0.5])
    cell_type = rng.choice(["T", "B"], size=n_cells)
    rate = np.full((n_cells, n_genes), 2.0)
    rate[cell_type == "B", 10:20] *= 4
    rate[batch == "b2", :10] *= 3
    values = np.log1p(rng.poisson(rate)).astype(np.float32)
    obs = pd.DataFrame(
        {"batch": batch, "cell_type": cell_type, "sex": rng.choice(["female", "male"], size=n_cells)},
        index=[f"cell{i}" for i in range(n_cells)],
    )
    return ad.AnnData(sp.csr_matrix(values), obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))


def trained(adata, epochs: int = 2, **settings) -> GENEX:
    GENEX.setup_anndata(adata, explain_keys=["sex"])
    model = GENEX(adata, seed=0, **{**TINY, **settings})
    model.train(max_epochs=epochs, device="cpu")
    return model


def test_switches_cover_methods_table():
    assert set(SWITCHES) >= {
        "condition_on_labels", "inference_token", "attention_layer", "epoch_definition", "critic_objective", "optimizer"
    }
    for mode in MODE_DEFAULTS.values():
        for switch, allowed in SWITCHES.items():
            assert mode[switch] in allowed


def test_setup_errors_name_the_problem():
    adata = tiny_adata()
    with pytest.raises(InputError, match="no column 'donor'"):
        GENEX.setup_anndata(adata, batch_key="donor")
    single = adata.copy()
    single.obs["batch"] = "only"
    with pytest.raises(InputError, match="single batch"):
        GENEX.setup_anndata(single)
    broken = adata.copy()
    broken.X = broken.X.toarray()
    broken.X[3, 4] = np.nan
    with pytest.raises(InputError, match="1 NaN/inf"):
        GENEX.setup_anndata(broken)
    with pytest.raises(InputError, match="setup_anndata"):
        GENEX(tiny_adata())
    GENEX.setup_anndata(adata)
    with pytest.raises(InputError, match="unknown keys"):
        GENEX(adata, max_epoch=3)
    with pytest.raises(InputError, match="pip install dog-optimizer==1.0.3"):
        GENEX(adata, optimizer="dog")
    with pytest.raises(InputError, match="map_to_batch"):
        GENEX(adata, map_to_batch="b9")


def test_train_outputs_shapes_and_info():
    adata = tiny_adata()
    model = trained(adata, epochs=3)
    corrected = model.get_corrected()
    assert corrected.shape == adata.shape and corrected.dtype == np.float32
    assert corrected.min() >= 0 and np.isfinite(corrected).all()
    assert model.get_latent().shape == (adata.n_obs, TINY["latent_dim"])
    # No cells: empty results of the same widths.
    assert model.get_latent(adata[:0].copy()).shape == (0, TINY["latent_dim"])
    assert model.get_corrected(adata[:0].copy()).shape == (0, adata.n_vars)
    assert list(model.history.columns) == HISTORY_COLUMNS and model.history["epoch"].tolist() == [1, 2, 3]
    info = model.training_info
    # 300 cells / 64 = 5 critic steps per epoch, one generator step per 5 critic steps.
    assert info["g_steps"] == 3 and info["d_steps"] == 15 and info["epochs"] == 3
    assert info["device"] == "cpu" and info["amp"] is False
    assert info["parameters"]["dead_attention"] == 0 and info["parameters"]["dead_attention_if_degenerate"] > 0
    # Another batch as reference, and new data with the same genes.
    mapped = GENEX(adata, seed=0, map_to_batch="b1", **TINY)
    mapped.module.load_state_dict(model.module.state_dict())
    mapped.ema.load_state_dict(model.ema.state_dict())
    assert not np.allclose(mapped.get_corrected(), corrected)
    subset = adata[::7].copy()
    np.testing.assert_allclose(model.get_corrected(subset), corrected[::7], rtol=1e-5, atol=1e-6)


def test_anchors_pull_the_batches_together():
    """The anchor term moves each batch toward its mutual nearest neighbours in the others."""
    adata = tiny_adata()
    batch2 = (adata.obs["batch"] == "b2").to_numpy()

    def batch_gap(values):  # b2 against the rest on the 10 genes b2 shifts
        return np.abs(values[batch2, :10].mean(0) - values[~batch2, :10].mean(0)).mean()

    gaps = {}
    for weight in (0.0, 200.0):
        model = trained(adata, epochs=20, lr=5e-3, lambda_anchor=weight)
        gaps[weight] = batch_gap(model.get_corrected())
        assert ("anchors" in model.training_info) == (weight > 0)
    assert model.training_info["anchors"]["fraction_anchored"] > 0.5
    assert gaps[200.0] < 0.6 * gaps[0.0] and gaps[0.0] <= batch_gap(adata.X.toarray())


def test_anchors_are_searched_again_on_the_corrected_values(monkeypatch, tmp_path):
    """Every anchor_refresh epochs the search reruns on the model's current correction of the same cells."""
    searched = []
    search = genex_module.find_anchors

    def recorded(source, *args, transform=None, **kwargs):
        searched.append(transform)
        return search(source, *args, transform=transform, **kwargs)

    monkeypatch.setattr(genex_module, "find_anchors", recorded)
    adata = tiny_adata()
    model = trained(adata, epochs=7, anchor_refresh=3)
    assert searched[0] is None and len(searched) == 3 and all(t is not None for t in searched[1:])
    assert [s["epoch"] for s in model.anchor_searches] == [0, 3, 6]
    assert list(model.training_info["anchor_refreshes"]) == ["3", "6"]
    # The workflow keeps training_info in the integration h5ad's uns.
    ad.AnnData(uns={"training": model.training_info}).write_h5ad(tmp_path / "info.h5ad")
    assert model.training_info["anchors"]["epoch"] == 0
    # The search saw the corrected values: they are what the model outputs for those cells now.
    cells = np.arange(adata.n_obs)
    np.testing.assert_allclose(model._correct_values(adata.X.toarray(), cells), model.get_corrected(), rtol=1e-6)
    with pytest.raises(InputError, match="anchor_refresh"):
        GENEX(adata, anchor_refresh=-1)


def test_lazy_gradient_penalty_runs_on_every_kth_critic_step(monkeypatch):
    calls = []
    penalty = GENEX._gradient_penalty

    def counted(module, real, fake, condition=None):
        calls.append(real.shape[0])
        return penalty(module, real, fake, condition)

    monkeypatch.setattr(GENEX, "_gradient_penalty", staticmethod(counted))
    model = trained(tiny_adata(), epochs=4, gp_every=4)
    # 300 cells / 64 = 5 critic steps per epoch, 20 in all: the penalty on steps 0, 4, ..., 16.
    assert model.training_info["d_steps"] == 20 and len(calls) == 5
    assert np.isfinite(model.history["gp"]).all() and np.isfinite(model.get_corrected()).all()


def test_generator_step_leaves_the_critic_weights_gradients_alone(monkeypatch):
    """The generator's loss runs through the critic, but only the critic's input needs a gradient."""
    unchanged = []
    step = GENEX._generator_step

    def watched(self, module, *args):
        before = [None if p.grad is None else p.grad.clone() for p in module.critic_parameters()]
        terms = step(self, module, *args)
        after = [p.grad for p in module.critic_parameters()]
        same = [a is None if b is None else a is not None and torch.equal(b, a) for b, a in zip(before, after)]
        unchanged.append(all(same))
        return terms

    monkeypatch.setattr(GENEX, "_generator_step", watched)
    model = trained(tiny_adata(), epochs=2)
    assert unchanged and all(unchanged)
    assert all(p.requires_grad for p in model.module.parameters())


def test_same_seed_same_numbers():
    first = trained(tiny_adata()).get_corrected()
    second = trained(tiny_adata()).get_corrected()
    np.testing.assert_array_equal(first, second)


def test_batch_mean_output_is_the_mean_of_the_translations_to_every_batch():
    adata = tiny_adata()
    model = trained(adata)
    x = torch.from_numpy(adata.X.toarray())
    source = torch.from_numpy(model.condition_codes)
    net = model.ema.eval()
    with torch.no_grad():
        translations = [net.transform(x, torch.full_like(source, k), source) for k in range(len(model.conditions))]
    expected = torch.stack(translations).mean(dim=0).numpy()
    np.testing.assert_allclose(model.get_corrected(), expected, rtol=1e-5, atol=1e-6)
    token = GENEX(adata, seed=0, inference_target="token", **TINY)
    token.module.load_state_dict(model.module.state_dict())
    token.ema.load_state_dict(model.ema.state_dict())
    with torch.no_grad():
        null = net.transform(x, torch.full_like(source, net.null_index), source).numpy()
    np.testing.assert_allclose(token.get_corrected(), null, rtol=1e-5, atol=1e-6)


def test_multiplicative_residual_keeps_zeros_and_trains():
    adata = tiny_adata()
    model = trained(adata, residual="multiplicative")
    corrected, values = model.get_corrected(), adata.X.toarray()
    assert np.isfinite(corrected).all() and corrected.min() >= 0
    assert (corrected[values == 0] == 0).all(), "a multiplicative effect cannot turn a zero count into expression"
    assert not np.allclose(corrected, values)


def test_killed_and_resumed_run_equals_uninterrupted(tmp_path):
    reference = trained(tiny_adata(), epochs=5)

    class Killed(Exception):
        pass

    def kill_at_epoch_4(epoch, row):
        if epoch == 4:
            raise Killed

    adata = tiny_adata()
    GENEX.setup_anndata(adata, explain_keys=["sex"])
    first = GENEX(adata, seed=0, **TINY)
    with pytest.raises(Killed):
        first.train(max_epochs=5, device="cpu", checkpoint_dir=tmp_path, checkpoint_every=2, callback=kill_at_epoch_4)
    # Epoch 4 was lost with the process; the new one resumes from the epoch-2 checkpoint.
    resumed = GENEX(adata, seed=0, **TINY)
    resumed.train(max_epochs=5, device="cpu", checkpoint_dir=tmp_path, checkpoint_every=2)
    np.testing.assert_array_equal(resumed.get_corrected(), reference.get_corrected())
    for name, value in reference.module.state_dict().items():
        assert (resumed.module.state_dict()[name] == value).all(), name
    assert resumed.history["epoch"].tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(resumed.history["d_loss"], reference.history["d_loss"])
    # An epoch cap reached, then a higher cap: another training length starts over (the result is
    # still that of an uninterrupted run; test_model_base checks the start-over itself).
    capped = GENEX(adata, seed=0, **TINY)
    capped.train(max_epochs=3, device="cpu", checkpoint_dir=tmp_path / "cap", checkpoint_every=10)
    more = GENEX(adata, seed=0, **TINY)
    more.train(max_epochs=5, device="cpu", checkpoint_dir=tmp_path / "cap")
    np.testing.assert_array_equal(more.get_corrected(), reference.get_corrected())
    # Anchors refreshed at epoch 3 come back from the epoch-4 checkpoint instead of a new search.
    refreshed = trained(tiny_adata(), epochs=5, anchor_refresh=3)
    killed = GENEX(adata, seed=0, **TINY, anchor_refresh=3)
    with pytest.raises(Killed):
        killed.train(max_epochs=5, device="cpu", checkpoint_dir=tmp_path / "refresh", checkpoint_every=2,
                     callback=kill_at_epoch_4)
    again = GENEX(adata, seed=0, **TINY, anchor_refresh=3)
    again.train(max_epochs=5, device="cpu", checkpoint_dir=tmp_path / "refresh", checkpoint_every=2)
    np.testing.assert_array_equal(again.get_corrected(), refreshed.get_corrected())
    assert [s["epoch"] for s in again.anchor_searches] == [0, 3]


def test_save_load_round_trip(tmp_path):
    adata = tiny_adata()
    model = trained(adata)
    model.save(tmp_path / "model.pt")
    loaded = GENEX.load(tmp_path / "model.pt", tiny_adata())
    np.testing.assert_array_equal(loaded.get_corrected(), model.get_corrected())
    pd.testing.assert_frame_equal(loaded.history, model.history, check_dtype=False)
    assert loaded.training_info == model.training_info
    assert loaded.explain_levels == {"sex": ["female", "male"]}
    fewer_genes = tiny_adata()[:, :40].copy()
    with pytest.raises(InputError):
        GENEX.load(tmp_path / "model.pt", fewer_genes)


def test_faithful_mode_runs_the_original_schedule():
    adata = tiny_adata()
    GENEX.setup_anndata(adata)
    model = GENEX(adata, mode="faithful", seed=0, hidden=(32, 16), latent_dim=8)
    model.train(max_epochs=2, device="cpu")
    info = model.training_info
    # 8,000 draws -> 3 mini-batches of 2,048 per epoch, one generator step per epoch.
    assert info["cells_per_epoch"] == 3 * 2048 and info["g_steps"] == 2 and info["d_steps"] == 6
    assert info["parameters"]["dead_attention"] > 0
    assert "DoG" in info["optimizer_note"] and info["optimizer"] == "adam"
    corrected = model.get_corrected()
    assert corrected.shape == adata.shape and corrected.min() >= 0


def test_streaming_from_h5ad_matches_memory(tmp_path):
    adata = tiny_adata()
    path = tmp_path / "cells.h5ad"
    blocks = (adata.X[i : i + 70] for i in range(0, adata.n_obs, 70))
    write_backed_csr(path, blocks, adata.obs, adata.var)
    backed = ad.read_h5ad(path, backed="r")  # a normal AnnData file
    assert backed.shape == adata.shape
    backed.file.close()
    source = MatrixSource(path)
    rows = np.array([0, 1, 2, 50, 51, 299])
    np.testing.assert_array_equal(source.rows(rows), adata.X[rows].toarray())
    codes, levels = source.column("batch")
    assert codes.dtype == np.int8 and levels == ["b1", "b2", "b3"]
    assert list(source.cell_names(np.array([5, 3]))) == ["cell5", "cell3"]
    in_memory = trained(adata)
    GENEX.setup_anndata(path, explain_keys=["sex"])
    streamed = GENEX(path, seed=0, **TINY)
    streamed.train(max_epochs=2, device="cpu")
    np.testing.assert_array_equal(streamed.get_corrected(), in_memory.get_corrected())
    with pytest.raises(InputError, match="csr"):
        dense = tmp_path / "dense.h5ad"
        ad.AnnData(adata.X.toarray(), obs=adata.obs).write_h5ad(dense)
        MatrixSource(dense)


def test_balanced_sampler_evens_out_batches_and_restores_state():
    codes = np.array([0] * 100 + [1] * 900)
    sampler = BalancedSampler(codes, seed=1)
    draws = sampler.draw(20_000)
    share = (codes[draws] == 0).mean()
    assert 0.47 < share < 0.53
    state = sampler.state()
    following = sampler.draw(10)
    sampler.restore(state)
    np.testing.assert_array_equal(sampler.draw(10), following)
