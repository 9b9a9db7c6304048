"""The shared model base: one settings idiom and checkpoints that resume only the same run."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from deepexpr.data.stream import write_backed_csr
from deepexpr.errors import InputError
from deepexpr.models._base import resolve_settings
from deepexpr.models.genex import GENEX
from deepexpr.models.nbvae import NBVAE
from test_genex import TINY, tiny_adata
from test_nbvae import tiny_bulk


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------ settings
SWITCHES = {"kind": ("a", "b")}
DEFAULTS = {"fast": {"kind": "a", "lr": 1e-3}, "slow": {"kind": "b", "lr": 1e-4}}


def test_settings_resolve_mode_defaults_and_overrides():
    assert resolve_settings("toy", SWITCHES, DEFAULTS, "slow", {}) == {"kind": "b", "lr": 1e-4}
    # None means "the mode's default", so a config can leave any key empty.
    assert resolve_settings("toy", SWITCHES, DEFAULTS, "fast", {"kind": "b", "lr": None}) == {"kind": "b", "lr": 1e-3}


@pytest.mark.parametrize(
    "mode, settings, source, accepted",
    [
        ("medium", {}, "toy.mode", "['fast', 'slow']"),
        ("fast", {"learning_rate": 0.1}, "toy.learning_rate", "['kind', 'lr']"),
        ("fast", {"kind": "c"}, "toy.kind", "['a', 'b']"),
    ],
)
def test_bad_settings_name_model_key_and_accepted_values(mode, settings, source, accepted):
    with pytest.raises(InputError) as error:
        resolve_settings("toy", SWITCHES, DEFAULTS, mode, settings)
    assert error.value.source == source
    assert accepted in error.value.problem


def test_both_models_use_the_base_settings():
    adata = tiny_adata()
    GENEX.setup_anndata(adata)
    with pytest.raises(InputError) as error:
        GENEX(adata, attention_layer="conv")
    assert error.value.source == "genex.attention_layer"
    bulk = tiny_bulk()
    NBVAE.setup_anndata(bulk)
    with pytest.raises(InputError) as error:
        NBVAE(bulk, learning_rate=1e-3)
    assert error.value.source == "nbvae.learning_rate"
    # Architecture and training settings are constructor settings with one name each.
    model = NBVAE(bulk, mode="faithful", latent_dim=3, hidden=16, lr=1e-2, max_epochs=4)
    assert model.module.mean_head.out_features == 3 and model.module.encoder[0].out_features == 16
    model.train(device="cpu")
    assert model.training_info["epochs"] == 4 and model.training_info["lr"] == 1e-2


# ---------------------------------------------------------------------------- checkpoints
def genex(adata, **settings) -> GENEX:
    GENEX.setup_anndata(adata, explain_keys=["sex"])
    return GENEX(adata, seed=0, **{**TINY, **settings})


def fresh(adata, epochs: int, **settings) -> GENEX:
    model = genex(adata, **settings)
    model.train(max_epochs=epochs, device="cpu")
    return model


def assert_same_weights(model: GENEX, reference: GENEX) -> None:
    for name, value in reference.module.state_dict().items():
        assert torch.equal(model.module.state_dict()[name], value), name
    np.testing.assert_array_equal(model.get_corrected(), reference.get_corrected())


def test_checkpoint_of_other_data_is_not_resumed(tmp_path, caplog):
    genex(tiny_adata(seed=0)).train(max_epochs=3, device="cpu", checkpoint_dir=tmp_path)
    # Same settings and length, new data (e.g. a re-simulation with another seed).
    changed = tiny_adata(seed=1)
    with caplog.at_level(logging.WARNING, logger="deepexpr"):
        model = genex(changed)
        model.train(max_epochs=3, device="cpu", checkpoint_dir=tmp_path)
    assert "the training data changed" in caplog.text
    assert_same_weights(model, fresh(tiny_adata(seed=1), epochs=3))


def test_checkpoint_of_another_length_is_not_resumed(tmp_path, caplog):
    genex(tiny_adata()).train(max_epochs=3, device="cpu", checkpoint_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="deepexpr"):
        model = genex(tiny_adata())
        model.train(max_epochs=2, device="cpu", checkpoint_dir=tmp_path)
    assert "max_epochs changed (3 -> 2)" in caplog.text
    assert model.history["epoch"].tolist() == [1, 2]
    assert_same_weights(model, fresh(tiny_adata(), epochs=2))


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path, caplog):
    genex(tiny_adata()).train(max_epochs=2, device="cpu", checkpoint_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="deepexpr"):
        model = genex(tiny_adata(), lambda_rec=1.0)
        model.train(max_epochs=2, device="cpu", checkpoint_dir=tmp_path)
    assert "the settings changed" in caplog.text
    assert_same_weights(model, fresh(tiny_adata(), epochs=2, lambda_rec=1.0))


def test_checkpoint_of_the_same_run_is_resumed(tmp_path, monkeypatch, caplog):
    done = genex(tiny_adata())
    done.train(max_epochs=2, device="cpu", checkpoint_dir=tmp_path)
    # A finished run is resumed at its last epoch: nothing is trained again.
    monkeypatch.setattr(GENEX, "_epoch", lambda *args: pytest.fail("a matching checkpoint was trained again"))
    with caplog.at_level(logging.INFO, logger="deepexpr"):
        again = genex(tiny_adata())
        again.train(max_epochs=2, device="cpu", checkpoint_dir=tmp_path)
    assert "resumed from" in caplog.text and "starts over" not in caplog.text
    assert again.history["epoch"].tolist() == [1, 2]
    assert_same_weights(again, done)


def test_data_fingerprint_streamed_equals_in_memory_and_sees_one_value(tmp_path):
    adata = tiny_adata()
    path = tmp_path / "cells.h5ad"
    write_backed_csr(path, (adata.X[i : i + 70] for i in range(0, adata.n_obs, 70)), adata.obs, adata.var)
    GENEX.setup_anndata(path, explain_keys=["sex"])
    streamed = GENEX(path, seed=0, **TINY).data_fingerprint()
    assert streamed == genex(adata).data_fingerprint()
    values = adata.X.toarray()
    values[5, 7] += 0.5
    changed = adata.copy()
    changed.X = sp.csr_matrix(values)
    assert genex(changed).data_fingerprint() != streamed
    relabelled = adata.copy()
    relabelled.obs["sex"] = relabelled.obs["sex"].to_numpy()[::-1]
    assert genex(relabelled).data_fingerprint() != streamed


# ------------------------------------------------------------------------- NB-VAE checkpoints
class Killed(Exception):
    pass


def kill_at(epoch_to_kill: int):
    def callback(epoch, row):
        if epoch == epoch_to_kill:
            raise Killed

    return callback


def nbvae(adata, **settings) -> NBVAE:
    NBVAE.setup_anndata(adata)
    return NBVAE(adata, mode="corrected", seed=2, **settings)


def test_nbvae_killed_and_resumed_run_equals_uninterrupted(tmp_path):
    reference = nbvae(tiny_bulk())
    reference.train(max_epochs=30, device="cpu")
    with pytest.raises(Killed):
        nbvae(tiny_bulk()).train(max_epochs=30, device="cpu", checkpoint_dir=tmp_path, checkpoint_every=10,
                                 callback=kill_at(25))
    # Epochs 21-25 were lost with the process; the new one resumes from the epoch-20 checkpoint.
    resumed = nbvae(tiny_bulk())
    resumed.train(max_epochs=30, device="cpu", checkpoint_dir=tmp_path, checkpoint_every=10)
    for name, value in reference.module.state_dict().items():
        assert torch.equal(resumed.module.state_dict()[name], value), name
    np.testing.assert_array_equal(resumed.history.to_numpy(), reference.history.to_numpy())
    assert resumed.training_info["epochs"] == 30


def test_nbvae_checkpoint_of_other_data_is_not_resumed(tmp_path, caplog):
    nbvae(tiny_bulk()).train(max_epochs=5, device="cpu", checkpoint_dir=tmp_path)
    changed = tiny_bulk()
    changed.layers["counts"][0, 0] += 1
    with caplog.at_level(logging.WARNING, logger="deepexpr"):
        model = nbvae(changed)
        model.train(max_epochs=5, device="cpu", checkpoint_dir=tmp_path)
    assert "the training data changed" in caplog.text
    reference = nbvae(changed)
    reference.train(max_epochs=5, device="cpu")
    np.testing.assert_array_equal(model.history.to_numpy(), reference.history.to_numpy())


def test_a_model_file_of_the_old_format_is_named_as_such(tmp_path):
    adata = tiny_adata()
    model = fresh(adata, epochs=1)
    path = tmp_path / "model.pt"
    torch.save({"config": model.config, "setup": model.setup, "module": model.module.state_dict()}, path)
    with pytest.raises(InputError, match="older deepexpr"):
        GENEX.load(path, adata)
