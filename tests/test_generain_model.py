"""GeneRAIN: settings, tokenisation, masking, schedules, determinism, checkpoint resume, save/load,
and the planted-module check on simulated ARCHS4 data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepexpr.data.archs4 import prepare_binned, simulate_archs4
from deepexpr.errors import InputError
from deepexpr.models.generain import GeneRAIN
from deepexpr.models.generain.model import IGNORE, centred_levels, ordinal_targets, tokenize
from deepexpr.models.generain.module import FIRST_GENE, MASK, PAD
from deepexpr.models.generain.settings import MODE_DEFAULTS, SWITCHES

TINY = {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32, "seq_len": 64, "batch_size": 8,
        "grad_accumulation": 2, "eval_every": 5}


pytestmark = pytest.mark.usefixtures("one_thread")


def binned_dataset(root, n_samples, n_genes, n_modules, module_size, seed=0, n_bins=100):
    """Simulate an ARCHS4 file under ``root`` and bin it (corrected path); return the binned directory."""
    simulate_archs4(root / "sim.h5", root / "attributes.tsv", n_samples=n_samples, n_genes=n_genes,
                    n_modules=n_modules, module_size=module_size, seed=seed)
    return prepare_binned(root / "sim.h5", root / "binned", n_bins=n_bins, boundary_fraction=1.0,
                          fractions=(0.8, 0.1, 0.1), qc={"min_nonzero_genes": n_genes // 3}, seed=seed)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return binned_dataset(tmp_path_factory.mktemp("small"), 80, 60, 2, 10)


def test_settings_resolve_and_reject(small):
    for mode in MODE_DEFAULTS:
        assert set(SWITCHES) <= set(MODE_DEFAULTS[mode])
        for variant in ("gpt", "bert_genes", "bert_expression"):
            GeneRAIN(small, variant=variant, mode=mode, **TINY)
    with pytest.raises(InputError, match="generain.nope"):
        GeneRAIN(small, nope=1)
    with pytest.raises(InputError, match="generain.rank_ties"):
        GeneRAIN(small, rank_ties="random")
    with pytest.raises(InputError, match="generain.variant"):
        GeneRAIN(small, variant="t5")


def test_tokenize_order_levels_and_ties():
    bins = torch.tensor([[5, 1, 9, 5, 1, 3]])
    tokens = tokenize(bins, seq_len=4, n_levels=4, stable=True)
    # Descending bins, ties (genes 0 and 3 at bin 5) by gene index; ids shifted by FIRST_GENE.
    assert (tokens["genes"][0] - FIRST_GENE).tolist() == [2, 0, 3, 5]
    assert tokens["valid"][0].tolist() == [True, True, True, True]
    assert tokens["levels"][0].tolist() == [4, 3, 2, 1]  # within-sample quantiles of 4 non-zero genes
    zeros = tokenize(torch.tensor([[1, 4, 1]]), seq_len=3, n_levels=100, stable=True)
    assert zeros["valid"][0].tolist() == [True, False, False] and zeros["levels"][0].tolist() == [100, 1, 1]
    unordered = tokenize(bins, seq_len=4, n_levels=4, stable=True, sorted_output=False)
    assert sorted(unordered["genes"][0].tolist()) == sorted(tokens["genes"][0].tolist())


def test_centred_levels_remove_the_gene_mean():
    # Gene 0 is always high, gene 1 always low: raw levels follow the gene; centred levels follow
    # each gene's deviation from its own mean (sample 0: gene 1 above its mean, gene 0 below).
    bins = torch.tensor([[90.0, 30.0, 50.0, 1.0]])
    valid = torch.tensor([[True, True, True, False]])
    mean, sd = torch.tensor([[95.0, 20.0, 50.0, 1.0]]), torch.ones(1, 4)
    assert centred_levels(bins, valid, mean, sd, n_levels=3).tolist() == [[1, 3, 2, 1]]


def test_gene_centred_switch_changes_only_bert_expression_levels(small):
    model = GeneRAIN(small, variant="bert_expression", expression_levels="gene_centred", **TINY)
    assert model.module.gene_bin_sd.min() > 0 and model.module.gene_bin_mean.max() > 1
    bins = model._rows(model.train_data, np.arange(4))
    inputs, labels = model._batch_inputs(bins, torch.Generator().manual_seed(0))
    scored = labels != IGNORE
    assert scored.any() and labels[scored].min() >= 1 and labels[scored].max() <= TINY.get("n_levels", 100)


def test_ordinal_targets_peak_at_the_level_and_skip_the_mask_class():
    target = ordinal_targets(torch.tensor([1, 5]), n_classes=11, sd=1.0)
    torch.testing.assert_close(target.sum(dim=1), torch.ones(2))
    assert (target[:, 0] == 0).all() and target.argmax(dim=1).tolist() == [1, 5]
    assert target[1, 4] == pytest.approx(target[1, 6]) and target[1, 4] > target[1, 3] > 0


def test_level_loss_per_mode(small):
    """Faithful scores a masked level as one class of n_levels; corrected against the ordinal target."""
    bins = torch.from_numpy(np.asarray(GeneRAIN(small, **TINY).train_data.matrix()[:8], dtype=np.int64))
    losses = {}
    for mode in ("faithful", "corrected"):
        model = GeneRAIN(small, variant="bert_expression", mode=mode, dropout=0.0, **TINY)
        inputs, labels = model._batch_inputs(bins, torch.Generator().manual_seed(0))
        logits = model.module(**inputs)
        scored = labels != IGNORE
        losses[mode] = (model._loss(bins, torch.Generator().manual_seed(0)).item(),
                        torch.nn.functional.cross_entropy(logits[scored], labels[scored]).item())
    assert losses["faithful"][0] == pytest.approx(losses["faithful"][1], rel=1e-5)
    assert losses["corrected"][0] != pytest.approx(losses["corrected"][1], rel=1e-3)
    with pytest.raises(InputError, match="generain.level_label_sd"):
        GeneRAIN(small, variant="bert_expression", level_label_sd=0, **TINY)


def test_masking_per_mode(small):
    bins = torch.from_numpy(np.asarray(GeneRAIN(small, **TINY).train_data.matrix()[:8], dtype=np.int64))
    for mode in ("faithful", "corrected"):
        model = GeneRAIN(small, variant="bert_genes", mode=mode, **TINY)
        inputs, labels = model._batch_inputs(bins, torch.Generator().manual_seed(0))
        chosen = labels != IGNORE
        assert chosen.any() and inputs["valid"][chosen].all()  # only non-zero genes are masked
        masked = inputs["tokens"][chosen]
        if mode == "faithful":
            assert (masked == PAD).all()  # R6: every chosen gene becomes id 0
        else:
            assert (masked == MASK).float().mean() > 0.5 and (masked == labels[chosen]).any()  # 80/10/10
    gpt = GeneRAIN(small, variant="gpt", mode="corrected", **TINY)
    inputs, labels = gpt._batch_inputs(bins, torch.Generator())
    target_valid = tokenize(bins, TINY["seq_len"], 100, stable=True)["valid"][:, 1:]
    assert (~target_valid).any() and (labels[~target_valid] == IGNORE).all()  # R7: zero targets ignored
    assert (labels[target_valid] != IGNORE).all()
    faithful = GeneRAIN(small, variant="gpt", mode="faithful", **TINY)
    _, labels_faithful = faithful._batch_inputs(bins, torch.Generator())
    assert (labels_faithful != IGNORE).all()  # R7: zero positions are scored in faithful mode


@pytest.mark.parametrize("accumulation", ["mean", "sum"])
def test_accumulated_gradient(small, monkeypatch, accumulation):
    """R4: the optimiser sees the mean (corrected) or the sum (faithful) of the micro-batch gradients."""
    model = GeneRAIN(small, variant="gpt", dropout=0.0, accumulation=accumulation, **TINY)
    seen = []
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, *a, **k: seen.append(
        model.module.gene_embedding.weight.grad.clone()))
    model.train(max_steps=1, device="cpu")
    reference = GeneRAIN(small, variant="gpt", dropout=0.0, **TINY)
    weight = reference.module.gene_embedding.weight
    grads = [torch.autograd.grad(reference._loss(reference._rows(reference.train_data, batch), torch.Generator()),
                                 weight)[0] for batch in reference._epoch_batches(0)[:2]]
    expected = (grads[0] + grads[1]) / (2 if accumulation == "mean" else 1)
    torch.testing.assert_close(seen[0], expected)


def test_warmup_cosine_schedule(small):
    model = GeneRAIN(small, lr=1e-3, warmup_fraction=0.1, final_lr_fraction=0.1, **TINY)
    optimizer = torch.optim.AdamW(model.module.parameters(), lr=1e-3)
    scheduler = model._scheduler(optimizer, 100)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert lrs[-1] == pytest.approx(1e-4, rel=0.01) and all(a >= b for a, b in zip(lrs[9:], lrs[10:]))


@pytest.mark.parametrize("variant", ["gpt", "bert_genes", "bert_expression"])
def test_deterministic_training(small, tmp_path, variant):
    def run(directory=None):
        model = GeneRAIN(small, variant=variant, seed=4, **TINY)
        model.train(max_steps=8, device="cpu", checkpoint_dir=directory, checkpoint_every=3)
        return model

    first, second = run(), run(tmp_path)
    np.testing.assert_array_equal(first.get_gene_embedding().to_numpy(), second.get_gene_embedding().to_numpy())
    assert list(first.history["step"]) == [5, 8] and np.isfinite(first.history["val_loss"]).all()
    assert torch.load(tmp_path / "last.pt", weights_only=False)["state"]["step"] == 8
    embedding = first.get_gene_embedding()
    assert embedding.shape == (len(first.genes), TINY["d_model"]) and embedding.index[0] == first.genes[0]


def test_resume_after_interruption_matches(small, tmp_path):
    class Stop(Exception):
        pass

    uninterrupted = GeneRAIN(small, variant="bert_genes", seed=1, **TINY)
    uninterrupted.train(max_steps=7, device="cpu")
    model = GeneRAIN(small, variant="bert_genes", seed=1, **TINY)
    original = model._write_checkpoint

    def write_then_stop(path, fingerprint, max_steps, payload):
        original(path, fingerprint, max_steps, payload)
        if payload["state"]["step"] == 3:
            raise Stop

    model._write_checkpoint = write_then_stop
    with pytest.raises(Stop):
        model.train(max_steps=7, device="cpu", checkpoint_dir=tmp_path, checkpoint_every=3)
    resumed = GeneRAIN(small, variant="bert_genes", seed=1, **TINY)
    resumed.train(max_steps=7, device="cpu", checkpoint_dir=tmp_path, checkpoint_every=3)
    np.testing.assert_array_equal(resumed.get_gene_embedding().to_numpy(),
                                  uninterrupted.get_gene_embedding().to_numpy())
    assert list(resumed.history["step"]) == list(uninterrupted.history["step"])
    # Other settings: the checkpoint is not resumed (training starts over).
    other = GeneRAIN(small, variant="bert_genes", seed=1, lr=5e-4, **TINY)
    other.train(max_steps=7, device="cpu", checkpoint_dir=tmp_path, checkpoint_every=100)
    assert not np.array_equal(other.get_gene_embedding().to_numpy(), resumed.get_gene_embedding().to_numpy())


def test_save_load_and_other_genes(small, tmp_path_factory):
    model = GeneRAIN(small, variant="bert_expression", seed=2, **TINY)
    model.train(max_steps=3, device="cpu")
    path = tmp_path_factory.mktemp("saved") / "model.pt"
    model.save(path)
    loaded = GeneRAIN.load(path, small)
    assert loaded.config == model.config
    np.testing.assert_array_equal(loaded.get_gene_embedding().to_numpy(), model.get_gene_embedding().to_numpy())
    assert loaded.validation_loss() == pytest.approx(model.validation_loss())
    other = binned_dataset(tmp_path_factory.mktemp("other"), 60, 50, 2, 10, seed=5)
    with pytest.raises(InputError, match="genes differ"):
        GeneRAIN.load(path, other)


def test_not_a_binned_directory(tmp_path):
    with pytest.raises(InputError, match="not a binned directory"):
        GeneRAIN(tmp_path)


def test_faithful_onecycle_steps_per_epoch(small):
    """R5 faithful: the learning rate moves only when an epoch ends (OneCycle, initial lr = lr / 5)."""
    model = GeneRAIN(small, mode="faithful", lr=1e-3, **{**TINY, "eval_every": 1})
    history = model.train(max_steps=12, device="cpu")
    per_epoch = history.groupby("epoch")["lr"].nunique()
    assert (per_epoch == 1).all() and history["lr"].iloc[0] == pytest.approx(2e-4)
    assert history["lr"].nunique() == history["epoch"].nunique() > 1


def test_checkpoint_of_other_data_is_not_resumed(small, tmp_path_factory, caplog):
    other = binned_dataset(tmp_path_factory.mktemp("other_data"), 80, 60, 2, 10, seed=9)
    first = GeneRAIN(small, variant="gpt", seed=0, **TINY)
    directory = tmp_path_factory.mktemp("ckpt")
    first.train(max_steps=3, device="cpu", checkpoint_dir=directory)
    second = GeneRAIN(other, variant="gpt", seed=0, **TINY)
    assert list(second.genes) == list(first.genes)  # same genes, other values
    with caplog.at_level("WARNING"):
        second.train(max_steps=3, device="cpu", checkpoint_dir=directory)
    assert "the training data changed" in caplog.text
