"""siVAE library: settings and bad input, train-only feature input, schedule, outputs, save/load,
resume, and a small planted-module check of gene neighbourhoods (siVAE vs siVAE-0 vs correlation)."""

from __future__ import annotations

import numpy as np
import pytest

from deepexpr.data.singlecell.simulate import simulate_singlecell
from deepexpr.errors import InputError
from deepexpr.evaluate.gene_modules import score_table
from deepexpr.genes import correlation_network, embedding_neighbours, network_neighbours, weighted_degree
from deepexpr.models.sivae import SIVAE

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(
    hidden=(32, 16),
    latent_dim=4,
    feature_dim=40,
    cell_epochs=3,
    feature_epochs=3,
    joint_epochs=3,
    batch_size=32,
    gene_batch_size=30,
    warmup_steps=10,
)


def _data(n_cells=120, n_genes=60, seed=0, modules=None):
    raw, truth = simulate_singlecell(
        {
            # the module tests are sized for the easy preset's deep libraries (no dropout)
            "preset": "easy",
            "n_genes": n_genes,
            "batch_cells": [n_cells],
            "batch_gene_prob": 0.0,
            "cell_types": ["a", "b"],
            "cell_type_prob": [0.5, 0.5],
        },
        seed,
        modules=modules,
    )
    SIVAE.setup_anndata(raw, label_key="cell_type")
    return raw, truth


@pytest.fixture(scope="module")
def trained():
    raw, _ = _data()
    model = SIVAE(raw, seed=1, **TINY)
    model.train(device="cpu")
    return raw, model


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"gamma": -0.1}, "sivae.gamma"),
        ({"feature_dim": 500}, "sivae.feature_dim"),  # 96 training cells cannot give 500 feature columns
        ({"feature_input": np.zeros((59, 5))}, "sivae.feature_input"),  # one row short of the 60 genes
        ({"likelihood": "poisson"}, "sivae.likelihood"),
        ({"gammma": 1.0}, "sivae.gammma"),
    ],
)
def test_bad_input_names_the_key_and_writes_nothing(settings, key):
    raw, _ = _data()
    with pytest.raises(InputError, match=key):
        SIVAE(raw, **{**TINY, **settings})
    assert "X_sivae" not in raw.obsm and "sivae_loadings" not in raw.varm


def test_modes_differ_only_in_the_switch_table():
    faithful, corrected = SIVAE.MODE_DEFAULTS["faithful"], SIVAE.MODE_DEFAULTS["corrected"]
    assert faithful["gamma"] == 0.0 and corrected["gamma"] == 0.05
    differing = {k for k in corrected if faithful[k] != corrected[k]}
    assert differing == {"gamma", "feature_cells_from", "gene_batch_size", "beta_warmup", "encoder_type"}


@pytest.mark.parametrize(("cells_from", "changes"), [("train", False), ("all", True)])
def test_feature_input_sees_test_cells_only_in_faithful_mode(cells_from, changes):
    raw, _ = _data()
    before = SIVAE(raw, **TINY, feature_cells_from=cells_from, feature_reduction="pca")
    test_cell = np.setdiff1d(np.arange(raw.n_obs), before.train_idx)[0]
    counts = raw.layers["counts"].toarray()
    counts[test_cell] = counts[test_cell][::-1]
    raw.layers["counts"] = counts
    after = SIVAE(raw, **TINY, feature_cells_from=cells_from, feature_reduction="pca")
    assert np.array_equal(before.train_idx, after.train_idx)
    assert (not np.allclose(before.feature_input, after.feature_input)) is changes


def test_training_outputs_and_annotate(trained):
    raw, model = trained
    history = model.history
    assert list(history["stage"]) == ["cell"] * 3 + ["feature"] * 3 + ["joint"] * 3
    assert (
        np.isfinite(history["loss"]).all() and (history.loc[history["stage"] == "joint", "interpretability"] > 0).all()
    )
    assert model.get_cell_embedding().shape == (120, 4) and model.get_gene_embedding().shape == (60, 4)
    out = model.annotate(raw.copy(), k=5)
    assert out.obsm["X_sivae"].shape == (120, 4) and out.varm["sivae_loadings"].shape == (60, 4)
    assert out.uns["sivae_neighbours"].shape == (60, 5)
    assert set(out.obs["sivae_split"]) == {"train", "test"} and (out.obs["sivae_split"] == "train").sum() == 96
    for column in ("sivae_hub_reconstruction", "sivae_hub_norm", "sivae_feature_awareness"):
        assert np.isfinite(out.var[column]).all()
    awareness = model.feature_awareness()
    assert list(awareness.columns) == ["latent", "layer1", "output"] and (awareness.to_numpy() <= 1).all()


def test_same_seed_same_model_and_save_load_round_trip(trained, tmp_path):
    raw, model = trained
    again = SIVAE(raw, seed=1, **TINY)
    again.train(device="cpu")
    np.testing.assert_array_equal(model.get_gene_embedding(), again.get_gene_embedding())
    model.save(tmp_path / "m.pt")
    loaded = SIVAE.load(tmp_path / "m.pt", raw)
    np.testing.assert_array_equal(model.get_cell_embedding(), loaded.get_cell_embedding())
    np.testing.assert_array_equal(model.get_gene_embedding(), loaded.get_gene_embedding())


def test_resume_gives_the_uninterrupted_result(tmp_path):
    raw, _ = _data()
    full = SIVAE(raw, seed=2, **TINY)
    full.train(device="cpu")

    def stop_after_feature(position, row):
        if position == 5:
            raise KeyboardInterrupt

    interrupted = SIVAE(raw, seed=2, **TINY)
    with pytest.raises(KeyboardInterrupt):
        interrupted.train(device="cpu", checkpoint_dir=tmp_path, checkpoint_every=1, callback=stop_after_feature)
    resumed = SIVAE(raw, seed=2, **TINY)
    resumed.train(device="cpu", checkpoint_dir=tmp_path)
    np.testing.assert_allclose(full.get_gene_embedding(), resumed.get_gene_embedding(), atol=1e-6)
    np.testing.assert_allclose(full.history["loss"], resumed.history["loss"], rtol=1e-6)


@pytest.mark.parametrize(("warmup", "expected_joint_beta"), [("cell_counter", 0.0), ("global", None)])
def test_beta_warmup_without_cell_pretraining(warmup, expected_joint_beta):
    raw, _ = _data()
    model = SIVAE(raw, **{**TINY, "cell_epochs": 0, "beta_warmup": warmup})
    history = model.train(device="cpu")
    joint = history.loc[history["stage"] == "joint", "beta"]
    if expected_joint_beta is None:
        assert joint.iloc[-1] > 0  # S3 corrected: the global step drives it
    else:
        assert (joint == expected_joint_beta).all()  # S3 faithful: stuck at 0 without stage 1


def test_negative_binomial_likelihood_trains():
    raw, _ = _data()
    model = SIVAE(raw, **{**TINY, "likelihood": "nb"})
    history = model.train(device="cpu")
    assert np.isfinite(history["loss"]).all()
    assert np.isfinite(model.reconstruct()).all()


def test_planted_module_neighbourhoods(capsys):
    """500 cells x 200 genes, 4 modules of 25 genes: precision@20 and hub AUROC of siVAE, siVAE-0
    and the correlation network, and 5-fold kNN accuracy of the cell embeddings (siVAE, siVAE-0,
    a plain VAE of the same size, PCA). Reports the numbers; asserts only that every method beats
    chance by far (gamma > 0 vs gamma = 0 is for the full-size study, not a unit test)."""
    from sklearn.decomposition import PCA

    from deepexpr.evaluate.cell_embedding import knn_accuracy

    raw, truth = _data(500, 200, seed=0, modules={"n_modules": 4, "module_size": 25, "hubs_per_module": 2})
    settings = {
        **TINY,
        "hidden": (64, 32),
        "latent_dim": 8,
        "feature_dim": 100,
        "cell_epochs": 30,
        "feature_epochs": 30,
        "joint_epochs": 30,
        "batch_size": 64,
        "gene_batch_size": 100,
        "warmup_steps": 100,
    }
    labels = raw.obs["cell_type"]
    methods, knn = {}, {}
    for name, gamma in (("siVAE", 0.05), ("siVAE-0", 0.0)):
        model = SIVAE(raw, seed=0, gamma=gamma, **settings)
        model.train(device="cpu")
        out = model.annotate(raw.copy(), k=20)
        methods[name] = (embedding_neighbours(model.get_gene_embedding(), 20), out.var["sivae_hub_reconstruction"])
        knn[name] = knn_accuracy(out.obsm["X_sivae"], labels)
    network = correlation_network(model.scaled[model.train_idx], raw.var_names)
    methods["correlation"] = (network_neighbours(network, 20), weighted_degree(network))
    plain = SIVAE(raw, seed=0, **{**settings, "feature_epochs": 0, "joint_epochs": 0, "cell_epochs": 60})
    plain.train(device="cpu")
    knn["plain VAE"] = knn_accuracy(plain.get_cell_embedding(), labels)
    knn["PCA"] = knn_accuracy(PCA(8, random_state=0).fit_transform(model.scaled), labels)
    table = score_table(methods, truth.var, k=20)
    with capsys.disabled():
        print("\n" + table.to_string(index=False))
        print("kNN accuracy:", {k: round(v, 3) for k, v in knn.items()})
    chance = 24 / 199
    assert (table["precision"] > 3 * chance).all()
    assert all(value > 0.6 for value in knn.values())


def test_faithful_mode_trains_with_all_genes_per_step():
    raw, _ = _data()
    model = SIVAE(raw, mode="faithful", **{k: v for k, v in TINY.items() if k != "gene_batch_size"})
    history = model.train(device="cpu")
    assert model.config["gamma"] == 0.0 and (history["interpretability"] == 0).all()
    assert model.config["gene_batch_size"] == 0 and np.isfinite(history["loss"]).all()


@pytest.mark.parametrize(("encoder_type", "deterministic"), [("follow_vae", True), ("always_gaussian", False)])
def test_autoencoder_mode_encoder(encoder_type, deterministic):
    """S6: without KL, corrected uses the encoder mean; faithful still samples."""
    raw, _ = _data()
    model = SIVAE(raw, **{**TINY, "vae": False, "encoder_type": encoder_type})
    assert model._stochastic is not deterministic
    history = model.train(device="cpu")
    assert (history["kl"] == 0).all()


def test_checkpoint_of_other_settings_starts_over(tmp_path, caplog):
    raw, _ = _data()
    SIVAE(raw, seed=3, **TINY).train(device="cpu", checkpoint_dir=tmp_path)
    changed = SIVAE(raw, seed=3, **{**TINY, "gamma": 0.1})
    with caplog.at_level("WARNING"):
        history = changed.train(device="cpu", checkpoint_dir=tmp_path)
    assert "the settings changed" in caplog.text and len(history) == 9
