"""GENEX: setup checks, training outputs, determinism, checkpoint resume, save/load, streaming."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

import deepexpr.models.genex.model as genex_module
from deepexpr.data.stream import BalancedSampler, MatrixSource, write_backed_csr
from deepexpr.errors import InputError
from deepexpr.models.genex import GENEX
from deepexpr.models.genex.model import HISTORY_COLUMNS
from deepexpr.models.genex.module import DegenerateAttention
from deepexpr.models.genex.settings import MODE_DEFAULTS, SWITCHES

TINY = {"hidden": (32, 16), "latent_dim": 8, "embed_dim": 4, "batch_size": 64}


pytestmark = pytest.mark.usefixtures("one_thread")


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


class NoStep:
    """An optimiser stand-in: gradients are left in place and no weight moves."""

    def zero_grad(self, set_to_none=True):
        pass

    def step(self):
        pass


def test_each_switch_changes_what_it_names():
    """Every value of every switch (but the uninstallable "dog") builds a model that differs where
    the methods table says; the two modes differ in every switch of the table (G1-G6 but G6)."""
    adata = tiny_adata(n_cells=80, n_genes=20)
    GENEX.setup_anndata(adata, label_key="cell_type")
    observed = {
        "condition_on_labels": lambda m: len(m.conditions),  # 3 batches, or 3 x 2 batch|label pairs
        "inference_token": lambda m: m._inference_targets(4)[0][1] if m.config["inference_target"] == "token" else None,
        "attention_layer": lambda m: type(m.module.encoder[0]).__name__,
        "epoch_definition": lambda m: m._draws_per_epoch(),
        "critic_objective": lambda m: type(m.module.critic_body[1]).__name__,
        "source_embedding": lambda m: m.module.source_embedding is None,
        "critic_conditioning": lambda m: m.module.projection is None,
        "residual": lambda m: m.module.multiplicative,
        "inference_target": lambda m: len(m._inference_targets(4)),
    }
    assert set(observed) | {"optimizer"} == set(SWITCHES)
    for switch, look in observed.items():
        # inference_token only shows at inference when the token is the target
        extra = {"inference_target": "token"} if switch == "inference_token" else {}
        seen = {look(GENEX(adata, seed=0, **TINY, **extra, **{switch: value})) for value in SWITCHES[switch]}
        assert len(seen) == len(SWITCHES[switch]), (switch, seen)
    faithful, corrected = (GENEX(adata, mode=mode, seed=0, **TINY) for mode in ("faithful", "corrected"))
    assert isinstance(faithful.module.encoder[0], DegenerateAttention) and isinstance(corrected.module.encoder[0], nn.Linear)
    assert isinstance(faithful.module.critic_body[1], nn.BatchNorm1d) and isinstance(corrected.module.critic_body[1], nn.LayerNorm)
    assert faithful._draws_per_epoch() == 8000 // 64 * 64 and corrected._draws_per_epoch() == 80
    assert faithful._inference_targets(4)[0][1] is True  # zero embedding at inference
    assert len(corrected._inference_targets(4)) == 3  # the mean over the 3 batches


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


@pytest.fixture(scope="module")
def anchor_models():
    """The tiny data and two 20-epoch models, without anchors (weight 0) and with (200, the default)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    adata = tiny_adata()
    models = {weight: trained(adata, epochs=20, lr=5e-3, lambda_anchor=weight) for weight in (0.0, 200.0)}
    torch.set_num_threads(threads)
    return adata, models


def test_anchors_pull_the_batches_together(anchor_models):
    """The anchor term moves each batch toward its mutual nearest neighbours in the others."""
    adata, models = anchor_models
    batch2 = (adata.obs["batch"] == "b2").to_numpy()

    def batch_gap(values):  # b2 against the rest on the 10 genes b2 shifts
        return np.abs(values[batch2, :10].mean(0) - values[~batch2, :10].mean(0)).mean()

    gaps = {weight: batch_gap(model.get_corrected()) for weight, model in models.items()}
    for weight, model in models.items():
        assert ("anchors" in model.training_info) == (weight > 0)
    assert models[200.0].training_info["anchors"]["fraction_anchored"] > 0.5
    raw = batch_gap(adata.X.toarray())
    # Measured: raw 0.91, no anchors 0.87, anchors 0.40. 20 epochs are only 20 generator steps, so
    # without anchors the model stays close to the identity it starts as (mean |change| 0.033): the
    # comparison is with a model that trained (not the untouched identity), and anchors must remove
    # most of the shift, against the raw data as well as against the anchor-free model.
    assert np.abs(models[0.0].get_corrected() - adata.X.toarray()).mean() > 0.01
    assert gaps[0.0] < raw
    assert gaps[200.0] < 0.6 * gaps[0.0] and gaps[200.0] < 0.5 * raw


def test_correction_keeps_the_cell_type_differences(anchor_models):
    """Genes that differ between cell types in the input (g10..g19, x4 in B) still differ after
    correction, by most of their input difference; genes with no cell-type effect stay flat."""
    adata, models = anchor_models
    is_b = (adata.obs["cell_type"] == "B").to_numpy()
    corrected, values = models[200.0].get_corrected(), adata.X.toarray()

    def gap(v, genes):
        return (v[is_b][:, genes].mean(0) - v[~is_b][:, genes].mean(0))

    kept = gap(corrected, slice(10, 20)) / gap(values, slice(10, 20))
    # Measured: 0.99-1.01 of each gene's input difference kept; largest gap of the other genes 0.13
    # (cell-type mix of the batches) against input differences of >= 1.05.
    assert (kept > 0.7).all(), kept
    assert np.abs(gap(corrected, slice(20, 50))).max() < 0.3 * gap(values, slice(10, 20)).min()


def test_cell_type_labels_never_reach_training():
    """Corrected mode: shuffling obs["cell_type"] changes nothing in the output (no label input)."""
    adata = tiny_adata()
    shuffled = adata.copy()
    shuffled.obs["cell_type"] = np.random.default_rng(1).permutation(shuffled.obs["cell_type"].to_numpy())
    assert (shuffled.obs["cell_type"] != adata.obs["cell_type"]).any()
    outputs = []
    for data in (adata, shuffled):
        GENEX.setup_anndata(data, label_key="cell_type")
        model = GENEX(data, seed=0, **TINY)
        model.train(max_epochs=2, device="cpu")
        outputs.append(model.get_corrected())
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_explanation_heads_give_the_generator_no_gradient():
    """G8: the explanation-only heads learn from real cells; the generator's loss never uses them."""
    adata = tiny_adata(n_cells=64)
    GENEX.setup_anndata(adata, explain_keys=["sex"])
    model = GENEX(adata, seed=0, **{**TINY, "dropout": 0.0})
    module = model.module.train()
    x = torch.from_numpy(adata.X.toarray())
    condition = torch.from_numpy(model.condition_codes).long()

    def generator_grads(scale):
        with torch.no_grad():
            module.heads["explain_sex"].weight.copy_(scale * torch.ones_like(module.heads["explain_sex"].weight))
        module.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        target, is_null = model._targets(condition)
        with genex_module._frozen(module.critic_parameters()):
            model._generator_step(module, x, condition, target, is_null, NoStep())
        return [p.grad.clone() for p in module.generator_parameters() if p.grad is not None]

    first, second = generator_grads(1.0), generator_grads(-7.0)
    assert first and len(first) == len(second)
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # The critic step (which trains the explanation heads) leaves the generator's weights untouched.
    module.zero_grad(set_to_none=True)
    target, is_null = model._targets(condition)
    labels = {"sex": torch.from_numpy(model.explain_codes["sex"].astype(np.int64))}
    model._critic_step(module, x, condition, target, is_null, labels, NoStep())
    assert module.heads["explain_sex"].weight.grad is not None
    assert all(p.grad is None for p in module.generator_parameters())


def test_critic_sign_conventions_and_penalty():
    """Faithful (original): W = E[D(fake)] - E[D(real)], penalty E|grad D(real)|^6 + E|grad D(fake)|^6,
    generator loss +E[D(fake)]; corrected (WGAN-GP): W = E[D(real)] - E[D(fake)], generator -E[D(fake)]."""
    adata = tiny_adata(n_cells=64)
    GENEX.setup_anndata(adata)
    x = torch.from_numpy(adata.X.toarray())
    for mode in ("faithful", "corrected"):
        model = GENEX(adata, mode=mode, seed=0, **{**TINY, "dropout": 0.0, "critic_conditioning": "none", "lambda_anchor": 0.0, "lambda_null": 0.0})
        module = model.module.train()
        condition = torch.from_numpy(model.condition_codes).long()
        torch.manual_seed(0)
        # The generator starts as the identity (fake == real, every sign gives W = 0): move it off.
        nn.init.normal_(module.decoder[-1].weight, std=0.5)
        target, is_null = model._targets(condition)
        with torch.no_grad():
            fake = module.transform(x, target, condition)
            assert (fake - x).abs().mean() > 0.1
            real_score, fake_score = module.critic(x)[0].mean(), module.critic(fake)[0].mean()
        torch.manual_seed(1)
        terms = model._critic_step(module, x, condition, target, is_null, {}, NoStep())
        if mode == "faithful":
            assert terms["wasserstein"] == pytest.approx((fake_score - real_score).item(), rel=1e-5)

            def power6(v):
                v = v.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(module.critic(v)[0].sum(), v)
                return grad.norm(dim=1).pow(6).mean()

            assert terms["gp"] == pytest.approx((power6(x) + power6(fake)).item(), rel=1e-4)
        else:
            assert terms["wasserstein"] == pytest.approx((real_score - fake_score).item(), rel=1e-5)
        assert terms["d_loss"] == pytest.approx(
            -terms["wasserstein"] + model.config["lambda_cls"] * terms["cls"] + model.config["lambda_gp"] * terms["gp"], rel=1e-5
        )
        # Generator: its adversarial term pushes the fake scores down (original) or up (WGAN).
        module.zero_grad(set_to_none=True)
        before = fake_score.item()
        torch.manual_seed(2)
        with genex_module._frozen(module.critic_parameters()):
            g_terms = model._generator_step(module, x, condition, target, is_null, NoStep())
        with torch.no_grad():
            fake_again = module.transform(x, target, condition)
            cls = model._classification(module.critic(fake_again)[1]["batch"], target, is_null)
            cycle = F.smooth_l1_loss(module.transform(fake_again, condition, target), x)
            identity = F.smooth_l1_loss(module.transform(x, condition, condition), x)
        adversarial = g_terms["g_loss"] - model.config["lambda_cls"] * cls.item() - model.config["lambda_rec"] * cycle.item()
        adversarial -= model.config["lambda_id"] * identity.item()
        assert adversarial == pytest.approx(before if mode == "faithful" else -before, rel=1e-3, abs=1e-4), mode


def test_null_token_targets():
    """Corrected: about null_prob of the cells are mapped to the null token (index n_batches), and
    their batch target is the uniform distribution: uniform logits are the minimum of its loss."""
    adata = tiny_adata(n_cells=80)
    GENEX.setup_anndata(adata)
    model = GENEX(adata, seed=0, **TINY)
    condition = torch.zeros(20_000, dtype=torch.long)
    torch.manual_seed(0)
    target, is_null = model._targets(condition)
    assert model.module.null_index == 3 == len(model.conditions)
    assert is_null.float().mean().item() == pytest.approx(model.config["null_prob"], abs=0.02)
    assert (target[is_null] == 3).all() and (target[~is_null] < 3).all()
    assert set(target[~is_null].tolist()) == {0, 1, 2}
    # The loss of a null-token cell: cross-entropy to uniform, smallest at uniform logits.
    null = torch.tensor([True, True])
    uniform = torch.zeros(2, 3, requires_grad=True)
    loss = model._classification(uniform, torch.tensor([3, 3]), null)
    assert loss.item() == pytest.approx(np.log(3), rel=1e-6)
    (grad,) = torch.autograd.grad(loss, uniform)
    torch.testing.assert_close(grad, torch.zeros_like(grad), rtol=0, atol=1e-6)
    confident = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    assert model._classification(confident, torch.tensor([3, 3]), null).item() > loss.item()
    # Cells with a real target keep the ordinary cross-entropy.
    hard = model._classification(confident, torch.tensor([0, 1]), torch.tensor([False, False]))
    assert hard.item() == pytest.approx(F.cross_entropy(confident, torch.tensor([0, 1])).item(), rel=1e-6)
    # Faithful: no null token, every target a batch.
    faithful = GENEX(adata, mode="faithful", seed=0, **TINY)
    target, is_null = faithful._targets(condition[:1000])
    assert not is_null.any() and (target < 3).all()


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
