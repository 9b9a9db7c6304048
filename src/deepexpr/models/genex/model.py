"""GENEX: conditional WGAN batch correction with a residual generator (docs/models/genex.md).

The corrected profile of a cell x measured in batch c, mapped to target covariate t, is
T(x, t) = relu(x + G(x, e(t))): the generator only learns a residual on log expression and the
ReLU keeps values non-negative. A critic scores realism (adversarial head) and predicts the batch
(classifier head); extra heads predict explanation-only covariates (e.g. severity, sex) from real
cells and are what Integrated Gradients explains for those covariates (:mod:`deepexpr.interpret.genex`).

``corrected`` mode (default) applies every fix of docs/models/genex.md; ``faithful`` reproduces the
original notebooks' training. Each fix is a switch (:data:`~deepexpr.models.genex.settings.SWITCHES`);
``mode`` sets their defaults (:data:`~deepexpr.models.genex.settings.MODE_DEFAULTS`), any setting can
be overridden by keyword. As in scvi-tools,
:class:`~deepexpr.models.genex.module.GENEXModule` is the network and :class:`GENEX` the user-facing
model::

    GENEX.setup_anndata(adata, batch_key="batch", explain_keys=["condition"])
    model = GENEX(adata, mode="corrected", seed=0)
    model.train(device="auto", checkpoint_dir="ckpt")   # rerun with the same dir = resume
    corrected = model.get_corrected()                   # cells x genes, >= 0

``adata`` may also be the path of an ``.h5ad`` with a csr ``X`` (log-normalised values): the
matrix is then streamed from disk mini-batch by mini-batch (:mod:`deepexpr.data.stream`), so a
million cells train in constant memory; ``setup_anndata`` takes the same path first.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from collections.abc import Callable

import anndata as ad
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from deepexpr.data.stream import BalancedSampler, MatrixSource
from deepexpr.errors import InputError
from deepexpr.models._base import BaseModel, ProgressReporter, resolve_device, seed_everything
from deepexpr.models.genex.anchors import Anchors, find_anchors
from deepexpr.models.genex.module import DegenerateAttention, GENEXModule
from deepexpr.models.genex.settings import EXTRA_SETTINGS, MODE_DEFAULTS, SWITCHES

logger = logging.getLogger(__name__)

# The original draws 8,000 cells per "epoch" (3 minibatches of 2,048 with drop_last).
ORIGINAL_DRAWS_PER_EPOCH = 8000
# Critic head (corrected mode) that predicts the source batch of null-token outputs.
NULL_SOURCE_HEAD = "null_source"
#: Per-epoch history; wall time stays out of it (it goes to training_info) so reruns write identical files.
HISTORY_COLUMNS = ["epoch", "d_loss", "g_loss", "wasserstein", "gp", "cls", "rec", "g_steps"]
# Cells per read when fingerprinting the training data for a checkpoint.
FINGERPRINT_CELLS = 4096


class GENEX(BaseModel):
    """User-facing GENEX for one dataset and one seed.

    ``adata`` holds log-normalised expression (``X`` or a layer; dense or csr) in memory, or is the
    path of an ``.h5ad`` whose csr ``X`` is then streamed from disk (only the row offsets and the
    obs codes stay in memory). Call :meth:`setup_anndata` first. ``settings`` override the mode's
    defaults (:data:`~deepexpr.models.genex.settings.MODE_DEFAULTS`; None = default);
    ``map_to_batch=<level>`` makes :meth:`get_corrected` map every cell to that batch instead of
    the inference token.
    """

    NAME = "genex"
    SWITCHES = SWITCHES
    MODE_DEFAULTS = MODE_DEFAULTS
    EXTRA_SETTINGS = EXTRA_SETTINGS
    SETUP_KEY = "genex_setup"
    HISTORY_COLUMNS = HISTORY_COLUMNS

    def __init__(self, adata: ad.AnnData | str | os.PathLike, mode: str = "corrected", seed: int = 0, **settings):
        config = self.resolve_settings(mode, settings)
        if config["optimizer"] == "dog":
            raise InputError(
                "genex.optimizer",
                "'dog' needs the DoG optimiser: pip install dog-optimizer==1.0.3 (not in the pinned envs); use 'adam'",
            )
        config["hidden"] = tuple(int(h) for h in config["hidden"])
        config["betas"] = tuple(float(b) for b in config["betas"])
        config["anchor_refresh"] = int(config["anchor_refresh"])
        if config["anchor_refresh"] < 0:
            raise InputError("genex.anchor_refresh", f"expected epochs >= 0 (0 = never), got {config['anchor_refresh']}")
        self.config = {"mode": mode, "seed": int(seed), "map_to_batch": settings.get("map_to_batch"), **config}
        self.setup = self.registration(adata)
        self.setup["explain_keys"] = [str(k) for k in self.setup["explain_keys"]]
        self.source = MatrixSource(adata, self.setup["layer"])
        self.batch_codes, self.batches = self.source.column(self.setup["batch_key"])
        # G1 (faithful only): the biological label joins the conditioning covariate.
        if self.config["condition_on_labels"] and not self.setup["label_key"]:
            raise InputError("genex.condition_on_labels", "needs setup_anndata(label_key=...)")
        self.conditions = self._condition_levels(self.source)
        self.condition_codes = self._condition_codes(self.source)
        self.explain_levels, self.explain_codes = {}, {}
        for key in self.setup["explain_keys"]:
            self.explain_codes[key], self.explain_levels[key] = self.source.column(key)
        if self.config["map_to_batch"] is not None and self.config["map_to_batch"] not in self.conditions:
            raise InputError("genex.map_to_batch", f"{self.config['map_to_batch']!r} is not a batch ({self.conditions})")
        head_sizes = {"batch": len(self.conditions), **{f"explain_{k}": len(v) for k, v in self.explain_levels.items()}}
        if self._null_adversary:
            head_sizes[NULL_SOURCE_HEAD] = len(self.conditions)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = GENEXModule(
                self.source.n_genes,
                len(self.conditions),
                head_sizes,
                self.config["hidden"],
                self.config["latent_dim"],
                self.config["embed_dim"],
                self.config["dropout"],
                self.config["attention_layer"],
                faithful_critic=self.config["critic_objective"] == "original",
                source_embedding=self.config["source_embedding"],
                projection=self.config["critic_conditioning"] == "projection",
                multiplicative=self.config["residual"] == "multiplicative",
            )
        self.ema = copy.deepcopy(self.module)
        self.anchors: Anchors | None = None
        # One summary per anchor search: before training (epoch 0), then every anchor_refresh epochs.
        self.anchor_searches: list[dict] = []
        self.history = pd.DataFrame(columns=HISTORY_COLUMNS)
        self.training_info: dict = {"parameters": self.parameter_counts()}
        self.device = torch.device("cpu")

    # -------------------------------------------------------------- setup
    @staticmethod
    def setup_anndata(
        adata: ad.AnnData | str | os.PathLike,
        batch_key: str = "batch",
        explain_keys=(),
        label_key: str | None = None,
        layer: str | None = None,
    ) -> None:
        """Register the keys GENEX uses, after checking them (an InputError names what is wrong).

        ``batch_key`` conditions the model (technical covariate, >= 2 levels); ``explain_keys``
        get explanation-only critic heads (the batch is always explainable); ``label_key`` is used
        only by faithful G1. ``layer`` None = ``X``. For a path, the registration is kept in
        memory for that path.
        """
        explain_keys = [str(k) for k in explain_keys if k != batch_key]
        setup = {"batch_key": batch_key, "explain_keys": explain_keys, "label_key": label_key or "", "layer": layer or ""}
        source = MatrixSource(adata, setup["layer"])
        for key in [batch_key, *explain_keys, *([label_key] if label_key else [])]:
            if key not in source.obs_columns:
                raise InputError(
                    source.name, f"obs has no column {key!r} (columns: {', '.join(source.obs_columns) or 'none'})"
                )
        _, levels = source.column(batch_key)
        if len(levels) < 2:
            raise InputError(
                source.name, f"obs[{batch_key!r}] has a single batch ({levels[0]!r}); batch correction needs at least 2"
            )
        for key in explain_keys:
            if len(source.column(key)[1]) < 2:
                raise InputError(source.name, f"obs[{key!r}] has a single level; nothing to explain")
        n_bad = source.count_nonfinite()
        if n_bad:
            raise InputError(source.name, f"expression holds {n_bad} NaN/inf values; expected finite log-normalised values")
        GENEX._store_registration(adata, setup)

    @classmethod
    def _setup_from_saved(cls, adata, setup: dict) -> None:
        # Stored as "" (h5ad uns cannot hold None).
        cls.setup_anndata(
            adata,
            batch_key=setup["batch_key"],
            explain_keys=setup["explain_keys"],
            label_key=setup["label_key"] or None,
            layer=setup["layer"] or None,
        )

    # --------------------------------------------------------------- base hooks
    def trained_genes(self) -> list[str]:
        return list(self.source.var_names)

    def saved_modules(self) -> dict[str, nn.Module]:
        return {"module": self.module, "ema": self.ema}

    def fingerprint_parts(self):
        yield np.asarray(self.source.var_names, dtype=str)
        # The values chunk by chunk: a streamed .h5ad is never loaded whole.
        for start in range(0, self.source.n_cells, FINGERPRINT_CELLS):
            yield self.source.rows(np.arange(start, min(start + FINGERPRINT_CELLS, self.source.n_cells)))
        yield np.asarray(self.conditions, dtype=str)
        yield self.condition_codes
        for key in sorted(self.explain_codes):
            yield np.asarray(self.explain_levels[key], dtype=str)
            yield np.asarray(self.explain_codes[key])

    def _condition_levels(self, source: MatrixSource) -> list[str]:
        if not self.config["condition_on_labels"]:
            return list(self.batches)
        return sorted(set(self._condition_names(source)))

    def _condition_names(self, source: MatrixSource) -> np.ndarray:
        batch_codes, batches = source.column(self.setup["batch_key"])
        names = np.asarray(batches, dtype=object)[batch_codes]
        if self.config["condition_on_labels"]:
            label_codes, labels = source.column(self.setup["label_key"])
            names = names + "|" + np.asarray(labels, dtype=object)[label_codes]
        return names

    def _condition_codes(self, source: MatrixSource) -> np.ndarray:
        """Codes of each cell's conditioning level in the trained model's level order."""
        if not self.config["condition_on_labels"]:
            codes, levels = source.column(self.setup["batch_key"])
            unknown = sorted(set(levels) - set(self.conditions))
            lookup = np.array([self.conditions.index(level) if level in self.conditions else -1 for level in levels])
            codes = lookup[codes]
        else:
            names = self._condition_names(source)
            unknown = sorted(set(names) - set(self.conditions))
            codes = np.array([self.conditions.index(n) if n in self.conditions else -1 for n in names])
        if unknown:
            raise InputError(source.name, f"batch levels {unknown} were not seen in training ({self.conditions})")
        return codes.astype(np.int64)

    def parameter_counts(self) -> dict:
        """Generator/critic parameters; dead W_Q/W_K of the degenerate attention (G3), and what the
        degenerate layers would add in a model built with plain Linear layers."""
        generator = sum(p.numel() for p in self.module.generator_parameters())
        critic = sum(p.numel() for p in self.module.critic_parameters())
        dead = sum(
            p.numel()
            for m in self.module.modules()
            if isinstance(m, DegenerateAttention)
            for p in [*m.query.parameters(), *m.key.parameters()]
        )
        first_layers = [self.module.encoder[0], self.module.critic_body[0]]
        would_be_dead = sum(2 * (layer.in_features * layer.out_features + layer.out_features) for layer in first_layers
                            if isinstance(layer, nn.Linear))
        return {
            "generator": generator,
            "critic": critic,
            "dead_attention": dead,
            "dead_attention_if_degenerate": dead or would_be_dead,
        }

    # ------------------------------------------------------------ training
    def train(
        self,
        max_epochs: int | None = None,
        device: str = "auto",
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 10,
        amp: bool | None = None,
        progress_every: int = 10,
        progress_bar: bool | None = None,
        callback: Callable[[int, dict], None] | None = None,
    ) -> pd.DataFrame:
        """Train for ``max_epochs`` (None = the mode's); returns :attr:`history`.

        Corrected: each epoch is one balanced pass over all cells (n_cells draws, inverse batch
        frequency), a critic step per mini-batch and a generator step after every ``n_critic``
        critic steps. Faithful: 3 mini-batches of 2,048 weighted draws, one generator step per
        epoch. Mixed precision (bf16 autocast; bf16 keeps fp32's exponent range, so no loss
        scaling is needed) only on CUDA; ``amp`` None = on with CUDA.

        With ``checkpoint_dir``, model, optimisers, EMA, RNG states and history are saved every
        ``checkpoint_every`` epochs (and at the end); calling ``train`` again with the same dir
        resumes from there and, on CPU, ends with exactly the weights of an uninterrupted run.
        A checkpoint written for other data, settings or ``max_epochs`` is not resumed: training
        starts over (the log says why) and replaces it.
        ``callback(epoch, row)`` runs after every epoch (after its checkpoint).
        """
        cfg = self.config
        max_epochs = int(max_epochs or cfg["max_epochs"])
        self.device = resolve_device(device)
        amp = self.device.type == "cuda" if amp is None else bool(amp and self.device.type == "cuda")
        seed_everything(cfg["seed"])
        module, ema = self.module.to(self.device), self.ema.to(self.device)
        opt_g = torch.optim.Adam(module.generator_parameters(), lr=cfg["lr"], betas=cfg["betas"])
        opt_d = torch.optim.Adam(module.critic_parameters(), lr=cfg["lr"], betas=cfg["betas"])
        sampler = BalancedSampler(self.batch_codes, seed=cfg["seed"])
        state = {"epoch": 0, "g_steps": 0, "d_steps": 0, "seconds": 0.0}
        rows: list[dict] = []
        checkpoint = self._checkpoint_path(checkpoint_dir)
        fingerprint = self.data_fingerprint() if checkpoint is not None else ""
        payload = self._read_checkpoint(checkpoint, fingerprint, max_epochs, self.device)
        if payload is not None:
            rows, state = self._resume(payload, opt_g, opt_d, sampler)
            logger.info("resumed from %s at epoch %d", checkpoint, state["epoch"])
        if cfg["lambda_anchor"] and self.anchors is None:
            self._find_anchors(epoch=0)
        progress = ProgressReporter(
            max_epochs, f"GENEX[{cfg['mode']}, seed {cfg['seed']}]", progress_every, bar=progress_bar
        )
        try:
            while state["epoch"] < max_epochs:
                started = time.perf_counter()
                if self._refresh_due(state["epoch"]):
                    self._find_anchors(epoch=state["epoch"])
                module.train()
                sums = self._epoch(module, ema, opt_g, opt_d, sampler, state, amp)
                state["epoch"] += 1
                state["seconds"] += time.perf_counter() - started
                row = {"epoch": state["epoch"], **sums, "g_steps": state["g_steps"]}
                rows.append(row)
                progress.update(
                    state["epoch"], d_loss=sums["d_loss"], g_loss=sums["g_loss"], wasserstein=sums["wasserstein"]
                )
                if checkpoint is not None and (
                    state["epoch"] % checkpoint_every == 0 or state["epoch"] == max_epochs
                ):
                    self._checkpoint(checkpoint, fingerprint, max_epochs, rows, state, opt_g, opt_d, sampler)
                if callback is not None:
                    callback(state["epoch"], row)
        finally:
            module.eval()
            ema.eval()
            self.history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
        last = rows[-1] if rows else {}
        progress.close(
            state["epoch"], "epoch cap", **{k: last[k] for k in ("d_loss", "g_loss", "wasserstein") if k in last}
        )
        self.training_info.update(
            {
                "epochs": state["epoch"],
                "max_epochs": max_epochs,
                "g_steps": state["g_steps"],
                "d_steps": state["d_steps"],
                "train_seconds": state["seconds"],
                "seconds_per_epoch": state["seconds"] / max(state["epoch"], 1),
                "cells_per_epoch": self._draws_per_epoch(),
                "device": str(self.device),
                "amp": amp,
                **self._anchor_info(),
                "optimizer": cfg["optimizer"],
            }
        )
        if cfg["mode"] == "faithful":
            self.training_info["optimizer_note"] = (
                "the original trains with DoG (dog-optimizer 1.0.3) plus polynomial-decay averaging; DoG is not "
                "installable here, so faithful mode uses Adam(lr 1e-4, betas (0.5, 0.999)) - the original's declared "
                "but unused settings - without weight averaging"
            )
        return self.history

    def _refresh_due(self, epoch: int) -> bool:
        every = self.config["anchor_refresh"]
        return self.anchors is not None and every > 0 and epoch > 0 and epoch % every == 0

    def _find_anchors(self, epoch: int) -> None:
        """Search the anchors: on the uncorrected values before training (epoch 0), on the
        current corrected values of the same sampled cells after that."""
        started = time.perf_counter()
        cfg = self.config
        self.anchors = find_anchors(
            self.source,
            self.condition_codes,
            len(self.conditions),
            cfg["anchor_neighbors"],
            cfg["anchor_cells"],
            cfg["seed"],
            transform=self._correct_values if epoch else None,
        )
        summary = self.anchors.summary(self.source.n_cells)
        self.anchor_searches.append({"epoch": epoch, **summary, "seconds": time.perf_counter() - started})
        logger.info(
            "anchors (epoch %d, %s values): %.0f %% of %d cells have a mutual nearest neighbour in another batch "
            "(%.1f partners on average)",
            epoch, "corrected" if epoch else "uncorrected", 100 * summary["fraction_anchored"], self.source.n_cells,
            summary["mean_partners"],
        )

    def _anchor_info(self) -> dict:
        """training_info entries: the search before training, and the refreshes keyed by epoch (a
        mapping, as .h5ad uns can store it)."""
        if not self.anchor_searches:
            return {}
        refreshes = {str(search["epoch"]): search for search in self.anchor_searches[1:]}
        return {"anchors": self.anchor_searches[0], "anchor_refreshes": refreshes}

    def _draws_per_epoch(self) -> int:
        if self.config["epoch_definition"] == "original":
            return (ORIGINAL_DRAWS_PER_EPOCH // self.config["batch_size"]) * self.config["batch_size"]
        return self.source.n_cells

    def _epoch(self, module, ema, opt_g, opt_d, sampler, state, amp) -> dict:
        cfg = self.config
        original = cfg["epoch_definition"] == "original"
        indices = sampler.draw(self._draws_per_epoch())
        batch_size = min(cfg["batch_size"], len(indices))
        n_batches = len(indices) // batch_size if original else -(-len(indices) // batch_size)
        sums = {k: 0.0 for k in ("d_loss", "g_loss", "wasserstein", "gp", "cls", "rec")}
        n_d = n_g = n_gp = 0
        for i in range(n_batches):
            rows = np.sort(indices[i * batch_size : (i + 1) * batch_size])
            if len(rows) < 2:  # batch norm needs two cells
                continue
            x = torch.from_numpy(self.source.rows(rows)).to(self.device)
            condition = torch.from_numpy(self.condition_codes[rows]).to(self.device)
            labels = {k: torch.from_numpy(v[rows].astype(np.int64)).to(self.device) for k, v in self.explain_codes.items()}
            target, is_null = self._targets(condition)
            # Lazy regularisation (StyleGAN2): the penalty on every gp_every-th critic step only,
            # weighted by gp_every; it is the double backward pass that makes a critic step costly.
            penalise = state["d_steps"] % cfg["gp_every"] == 0
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                d_terms = self._critic_step(module, x, condition, target, is_null, labels, opt_d, penalise)
            n_d += 1
            n_gp += penalise
            state["d_steps"] += 1
            for key in ("d_loss", "wasserstein", "gp", "cls"):
                sums[key] += d_terms[key]
            # The original's "if i % n_critic == 0" restarts every epoch and gives its first
            # mini-batch a generator step; ours counts critic steps across epochs.
            generator_turn = i % cfg["n_critic"] == 0 if original else state["d_steps"] % cfg["n_critic"] == 0
            if generator_turn:
                anchor = self._anchor_partners(rows, target, is_null)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp), _frozen(module.critic_parameters()):
                    g_terms = self._generator_step(module, x, condition, target, is_null, opt_g, anchor)
                self._update_ema(module, ema, state["g_steps"])
                state["g_steps"] += 1
                n_g += 1
                sums["g_loss"] += g_terms["g_loss"]
                sums["rec"] += g_terms["rec"]
        for key in ("d_loss", "wasserstein", "cls"):
            sums[key] /= max(n_d, 1)
        sums["gp"] = sums["gp"] / n_gp if n_gp else float("nan")
        for key in ("g_loss", "rec"):
            sums[key] = sums[key] / n_g if n_g else float("nan")
        return sums

    def _anchor_partners(self, rows, target, is_null) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(positions in the mini-batch, expression of one partner in each one's target batch), or None."""
        if self.anchors is None:
            return None
        targets = torch.where(is_null, -1, target).cpu().numpy()
        positions, partners = self.anchors.draw(rows, targets)
        if len(positions) == 0:
            return None
        return torch.from_numpy(positions).to(self.device), torch.from_numpy(self.source.rows(partners)).to(self.device)

    @property
    def _null_adversary(self) -> bool:
        return self.config["inference_token"] == "null" and self.config["null_prob"] > 0 and self.config["lambda_null"] > 0

    @property
    def _projected(self) -> bool:
        return self.config["critic_conditioning"] == "projection"

    def _targets(self, condition):
        """Target covariates: uniform over levels, or (corrected, p = null_prob) the null token."""
        n = condition.shape[0]
        target = torch.randint(0, len(self.conditions), (n,), device=condition.device)
        is_null = torch.zeros(n, dtype=torch.bool, device=condition.device)
        if self.config["inference_token"] == "null" and self.config["null_prob"] > 0:
            is_null = torch.rand(n, device=condition.device) < self.config["null_prob"]
            target = torch.where(is_null, torch.full_like(target, self.module.null_index), target)
        return target, is_null

    def _classification(self, logits, target, is_null=None):
        """CE to the target level; for null-token cells CE to the uniform distribution (batch-neutral).

        Faithful: BCE-with-logits on one-hot targets, summed over classes, divided by batch size.
        """
        logits = logits.float()
        if self.config["critic_objective"] == "original":
            onehot = F.one_hot(target, logits.shape[1]).float()
            return F.binary_cross_entropy_with_logits(logits, onehot, reduction="sum") / logits.shape[0]
        log_p = F.log_softmax(logits, dim=1)
        if is_null is None:
            return F.nll_loss(log_p, target)
        hard = F.nll_loss(log_p, target.clamp(max=logits.shape[1] - 1), reduction="none")
        return torch.where(is_null, -log_p.mean(dim=1), hard).mean()

    def _critic_step(self, module, x, condition, target, is_null, labels, opt_d, penalise: bool = True) -> dict:
        cfg = self.config
        with torch.no_grad():
            fake = module.transform(x, target, condition, zero_token=False)
        # Real pairs: each cell with its batch, or with the null token for as many cells as are
        # mapped to it (the null token's real distribution is all batches pooled).
        real_condition = None
        if self._projected:
            pooled = is_null[torch.randperm(len(is_null), device=x.device)]
            real_condition = torch.where(pooled, torch.full_like(condition, self.module.null_index), condition)
        real_score, real_heads = module.critic(x, real_condition)
        fake_score, fake_heads = module.critic(fake, target if self._projected else None)
        real_score, fake_score = real_score.float(), fake_score.float()
        # Batch and explanation heads learn from real cells only (G8: never in the generator loss).
        cls = self._classification(real_heads["batch"], condition)
        for key, codes in labels.items():
            cls = cls + F.cross_entropy(real_heads[f"explain_{key}"].float(), codes)
        if self._null_adversary and is_null.any():
            # The null-source head learns to tell the batch a null-token output came from.
            cls = cls + cfg["lambda_null"] * F.cross_entropy(
                fake_heads[NULL_SOURCE_HEAD][is_null].float(), condition[is_null]
            )
        # Original: reversed sign (the critic pushes real scores down) and WGAN-div power 6 on real
        # and fake separately; the logged estimate is in that convention (fake - real).
        original = cfg["critic_objective"] == "original"
        wasserstein = fake_score.mean() - real_score.mean() if original else real_score.mean() - fake_score.mean()
        loss = -wasserstein + cfg["lambda_cls"] * cls
        gp = torch.zeros((), device=x.device)
        if penalise:
            if original:
                gp = self._gradient_power(module, x) + self._gradient_power(module, fake)
            else:
                gp = self._gradient_penalty(module, x, fake, target if self._projected else None)
            loss = loss + cfg["lambda_gp"] * cfg["gp_every"] * gp
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        return {"d_loss": loss.item(), "wasserstein": wasserstein.item(), "gp": gp.item(), "cls": cls.item()}

    @staticmethod
    def _gradient_penalty(module, real, fake, condition=None):
        """WGAN-GP: E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates of real and fake cells."""
        alpha = torch.rand(real.shape[0], 1, device=real.device)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        score, _ = module.critic(mixed, condition)
        (grad,) = torch.autograd.grad(score.float().sum(), mixed, create_graph=True)
        return ((grad.float().norm(2, dim=1) - 1) ** 2).mean()

    @staticmethod
    def _gradient_power(module, x, power: int = 6):
        x = x.detach().requires_grad_(True)
        score, _ = module.critic(x)
        (grad,) = torch.autograd.grad(score.float().sum(), x, create_graph=True)
        return grad.float().norm(2, dim=1).pow(power).mean()

    def _generator_step(self, module, x, condition, target, is_null, opt_g, anchor=None) -> dict:
        cfg = self.config
        fake = module.transform(x, target, condition)
        fake_score, fake_heads = module.critic(fake, target if self._projected else None)
        cls = self._classification(fake_heads["batch"], target, is_null)
        if self._null_adversary and is_null.any():
            # ... and the generator makes it guess uniformly: no batch left in the corrected cells.
            log_p = F.log_softmax(fake_heads[NULL_SOURCE_HEAD][is_null].float(), dim=1)
            cls = cls + cfg["lambda_null"] * -log_p.mean(dim=1).mean()
        # Cycle: back from the target covariate to the true batch. The mapped cell now "comes from"
        # its target batch (or the null token), which is its source on the way back.
        cycle = F.smooth_l1_loss(module.transform(fake, condition, target).float(), x)
        # Original: reversed sign, the generator pushes the fake scores down.
        adversarial = fake_score.float().mean() if cfg["critic_objective"] == "original" else -fake_score.float().mean()
        loss = adversarial + cfg["lambda_cls"] * cls + cfg["lambda_rec"] * cycle
        if cfg["lambda_id"]:
            # Mapping a cell to its own batch should change nothing (keeps biology in the residual).
            loss = loss + cfg["lambda_id"] * F.smooth_l1_loss(module.transform(x, condition, condition).float(), x)
        if anchor is not None:
            # Mapped to batch t, an anchored cell should land on a mutual nearest neighbour in t;
            # averaged over the whole mini-batch, so the weight does not depend on how many have one.
            positions, partners = anchor
            pulled = F.smooth_l1_loss(fake[positions].float(), partners, reduction="sum") / fake.numel()
            loss = loss + cfg["lambda_anchor"] * pulled
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        return {"g_loss": loss.item(), "rec": cycle.item()}

    @torch.no_grad()
    def _update_ema(self, module, ema, step: int) -> None:
        """EMA of the weights with warm-up: decay min(d, (1 + k) / (10 + k)) at generator step k."""
        if not self.config["ema_decay"]:
            return
        decay = min(self.config["ema_decay"], (1 + step) / (10 + step))
        for target, source in zip(ema.state_dict().values(), module.state_dict().values()):
            if target.dtype.is_floating_point:
                target.mul_(decay).add_(source.detach(), alpha=1 - decay)
            else:
                target.copy_(source)

    # --------------------------------------------------------- checkpoints
    def _checkpoint(self, path, fingerprint: str, max_epochs: int, rows, state, opt_g, opt_d, sampler) -> None:
        payload = {
            "module": self.module.state_dict(),
            "ema": self.ema.state_dict(),
            "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(),
            "sampler": sampler.state(),
            "anchors": None if self.anchors is None else (self.anchors.cells, self.anchors.partners),
            "anchor_searches": self.anchor_searches,
            "rows": rows,
            "state": state,
        }
        self._write_checkpoint(path, fingerprint, max_epochs, payload)

    def _resume(self, payload: dict, opt_g, opt_d, sampler):
        self.module.load_state_dict(payload["module"])
        self.ema.load_state_dict(payload["ema"])
        opt_g.load_state_dict(payload["opt_g"])
        opt_d.load_state_dict(payload["opt_d"])
        sampler.restore(payload["sampler"])
        # The refreshed anchors came from the model as it was then: restore them, do not search again.
        if payload["anchors"] is not None:
            self.anchors = Anchors(*payload["anchors"])
        self.anchor_searches = list(payload["anchor_searches"])
        return list(payload["rows"]), dict(payload["state"])

    # ------------------------------------------------------------- outputs
    def _inference_targets(self, n: int) -> list[tuple[torch.Tensor, bool]]:
        """The inference covariates; the output is the mean of the maps to each of them."""
        cfg = self.config
        if cfg["map_to_batch"] is not None:
            return [(torch.full((n,), self.conditions.index(cfg["map_to_batch"]), dtype=torch.long), False)]
        if cfg["inference_target"] == "batch_mean":
            return [(torch.full((n,), k, dtype=torch.long), False) for k in range(len(self.conditions))]
        return [(torch.full((n,), self.module.null_index, dtype=torch.long), cfg["inference_token"] == "zero")]

    @torch.no_grad()
    def _map(self, fn, adata, batch_size: int) -> np.ndarray:
        source, codes = self.source, self.condition_codes
        if adata is not None:
            setup = self.setup
            source = MatrixSource(adata, setup["layer"])
            if not source.var_names.equals(self.source.var_names):
                raise InputError(source.name, "genes differ from those the model was trained on (same order expected)")
            codes = self._condition_codes(source)
        return self._map_chunks(fn, source.rows, codes, batch_size)

    @torch.no_grad()
    def _map_chunks(self, fn, read_rows: Callable[[np.ndarray], np.ndarray], codes: np.ndarray, batch_size: int):
        """Mean of ``fn`` over the inference covariates for every cell, ``batch_size`` cells at a time:
        ``read_rows(rows)`` gives their values, ``codes`` their batch codes; EMA weights when kept."""
        net = self.ema if self.config["ema_decay"] else self.module
        net.eval().to(self.device)
        out = []
        # No cells still runs one empty chunk, so the result has fn's width (genes or latent).
        for start in range(0, len(codes), batch_size) or [0]:
            rows = np.arange(start, min(start + batch_size, len(codes)))
            x = torch.from_numpy(read_rows(rows)).to(self.device)
            cell_source = torch.from_numpy(codes[rows]).to(self.device)
            maps = [fn(net, x, t.to(self.device), cell_source, zero).float() for t, zero in self._inference_targets(len(rows))]
            out.append((sum(maps) / len(maps)).cpu().numpy())
        return np.concatenate(out)

    def _correct_values(self, values: np.ndarray, cells: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The current correction of training cells ``cells`` whose values are given (anchor refresh)."""
        return self._map_chunks(_translate, values.__getitem__, self.condition_codes[cells], batch_size)

    def get_corrected(self, adata: ad.AnnData | str | os.PathLike | None = None, batch_size: int = 1024) -> np.ndarray:
        """Corrected log expression (cells x genes, float32, >= 0) of ``adata`` (None = the training
        data): the mean of a cell's maps to every batch (corrected), the zero vector (faithful), the
        null token (``inference_target="token"``) or ``map_to_batch``; with the EMA weights when kept."""
        return self._map(_translate, adata, batch_size)

    def get_latent(self, adata: ad.AnnData | str | os.PathLike | None = None, batch_size: int = 1024) -> np.ndarray:
        """The generator's deterministic latent (cells x latent_dim) under the inference covariate
        (averaged over the batches with ``inference_target="batch_mean"``)."""
        return self._map(_encode, adata, batch_size)


@contextlib.contextmanager
def _frozen(parameters: list[nn.Parameter]):
    """No gradients for these parameters inside the block: the generator step backpropagates
    through the critic to its input only, and the critic's own weight gradients would be discarded."""
    before = [parameter.requires_grad for parameter in parameters]
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(parameters, before):
            parameter.requires_grad_(flag)


def _translate(net: GENEXModule, x, target, source, zero_token: bool):
    return net.transform(x, target, source, zero_token)


def _encode(net: GENEXModule, x, target, source, zero_token: bool):
    return net.latent(x, target, source, zero_token)
