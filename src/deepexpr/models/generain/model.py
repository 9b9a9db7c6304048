"""GeneRAIN: transformers trained on Binning-By-Gene expression, read out as gene embeddings.

Re-implements suzheng/GeneRAIN (docs/models/generain.md) in two modes on the shared model base.
A sample's binned genes (:class:`~deepexpr.data.archs4.BinnedDataset`) become a token sequence
(:func:`tokenize`): genes ordered by expression, the top ``seq_len`` kept, each with a within-sample
expression level 1..``n_levels``; zero-expression genes are not attended to. The ``variant`` picks
the objective (:mod:`.module`); the learned gene embedding is GeneRAIN-vec
(:meth:`GeneRAIN.get_gene_embedding`).

==================  ========================  ===============================================
switch              faithful                  corrected
==================  ========================  ===============================================
accumulation (R4)   ``sum`` of micro losses   ``mean`` (divided by accumulation steps)
lr_schedule (R5)    ``onecycle_epoch``        ``warmup_cosine`` per optimiser step
mask_token (R6)     ``pad_id`` (id 0, 100 %)  ``dedicated`` [MASK], 80/10/10 on gene tokens
gpt_zero_labels     ``included``              ``ignored`` (R7)
rank_ties (R8)      ``argsort``               ``stable`` (bin desc, then gene index)
level_loss          ``categorical``           ``ordinal`` (Gaussian target over the levels)
==================  ========================  ===============================================
"""

from __future__ import annotations

import logging
import math
import os
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from deepexpr.data.archs4.binning import BinnedDataset
from deepexpr.errors import InputError
from deepexpr.models._base import BaseModel, ProgressReporter, resolve_device, seed_everything
from deepexpr.models.generain.module import FIRST_GENE, MASK, PAD, GeneRAINModule
from deepexpr.models.generain.settings import MODE_DEFAULTS, SWITCHES, VARIANTS

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ["step", "epoch", "lr", "train_loss", "val_loss"]
IGNORE = -100
# The original's OneCycle: 40 scheduler steps (one per epoch), initial lr = max / 5, and the
# schedule frozen once epoch 30 is reached.
ONECYCLE_TOTAL, ONECYCLE_DIV, ONECYCLE_FREEZE = 40, 5.0, 30
# Validation mini-batches per evaluation: bounds evaluation time on large validation splits.
VALIDATION_BATCHES = 64
FINGERPRINT_ROWS = 4096
# Training rows (evenly spaced) behind each gene's bin mean and sd for gene-centred levels.
GENE_STATS_ROWS = 10_000


def tokenize(bins: torch.Tensor, seq_len: int, n_levels: int, stable: bool, sorted_output: bool = True) -> dict:
    """Gene-id, level and valid tensors (batch x L) from per-gene bins (batch x genes, 1 = zero).

    Genes are ordered by bin, descending: ``stable`` breaks ties by gene index (R8), otherwise the
    sort kernel's order decides (the original's argsort). The top ``L = min(seq_len, genes)`` are
    kept (``sorted_output=False`` keeps them in the unordered top-k order the original's
    BERT-expression used). A non-zero gene's level is its within-sample quantile among the
    sample's non-zero genes, 1..n_levels (the highest always n_levels); zero genes get level 1
    and ``valid`` False.
    """
    length = min(seq_len, bins.shape[1])
    if stable:
        order = torch.sort(bins, dim=1, descending=True, stable=True).indices
    else:
        order = torch.argsort(bins, dim=1, descending=True)
    nonzero = (bins > 1).sum(dim=1, keepdim=True)
    position = torch.arange(bins.shape[1], device=bins.device)[None, :]
    ascending_rank = nonzero - 1 - position
    # ceil((rank + 1) * n_levels / n): the most expressed gene is always at the top level.
    n = nonzero.clamp(min=1)
    quantile = torch.div((ascending_rank + 1) * n_levels + n - 1, n, rounding_mode="floor")
    levels = torch.where(position < nonzero, quantile, 1)
    level_of_gene = torch.empty_like(bins).scatter_(1, order, levels)
    top = order[:, :length] if sorted_output else torch.topk(bins, length, dim=1, sorted=False).indices
    return {"genes": top + FIRST_GENE, "levels": level_of_gene.gather(1, top), "valid": bins.gather(1, top) > 1}


def centred_levels(bins: torch.Tensor, valid: torch.Tensor, mean: torch.Tensor, sd: torch.Tensor, n_levels: int):
    """Within-sample levels 1..n_levels of (bin - gene mean) / gene sd over the valid positions.

    ``bins``, ``valid``, ``mean`` and ``sd`` are batch x L (the sequence's genes); invalid
    positions get level 1. Ties keep position order.
    """
    centred = torch.where(valid, (bins - mean) / sd, -torch.inf)
    order = torch.sort(centred, dim=1, stable=True).indices
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(bins.shape[1], device=bins.device).expand_as(order))
    n = valid.sum(dim=1, keepdim=True)
    ascending_rank = rank - (bins.shape[1] - n)
    quantile = torch.div((ascending_rank + 1) * n_levels + n.clamp(min=1) - 1, n.clamp(min=1), rounding_mode="floor")
    return torch.where(valid, quantile, 1)


def ordinal_targets(levels: torch.Tensor, n_classes: int, sd: float) -> torch.Tensor:
    """Soft targets (len(levels) x n_classes): a Gaussian of ``sd`` levels around each true level
    over the classes 1..n_classes-1, normalised; class 0 ([MASK]) gets none."""
    classes = torch.arange(n_classes, device=levels.device, dtype=torch.float32)
    weight = torch.exp(-0.5 * ((classes[None, :] - levels[:, None].float()) / sd) ** 2)
    weight[:, 0] = 0.0
    return weight / weight.sum(dim=1, keepdim=True)


class GeneRAIN(BaseModel):
    """User-facing GeneRAIN model for one binned dataset, one variant and one seed.

    ``data`` is a binned directory (:func:`~deepexpr.data.archs4.write_binned`) or a
    :class:`~deepexpr.data.archs4.BinnedDataset`; its ``train`` split is trained on and its
    ``validation`` split scored. ``variant`` is one of ``gpt``, ``bert_genes``,
    ``bert_expression``; ``settings`` are the keys of
    :data:`~deepexpr.models.generain.settings.MODE_DEFAULTS`.
    """

    NAME = "generain"
    SWITCHES = SWITCHES
    MODE_DEFAULTS = MODE_DEFAULTS
    SETUP_KEY = "generain_setup"
    HISTORY_COLUMNS = HISTORY_COLUMNS

    def __init__(
        self,
        data: str | os.PathLike | BinnedDataset,
        variant: str = "gpt",
        mode: str = "corrected",
        seed: int = 0,
        **settings,
    ):
        if variant not in VARIANTS:
            raise InputError("generain.variant", f"expected one of {list(VARIANTS)}, got {variant!r}")
        self.config = {"mode": mode, "seed": seed, "variant": variant, **self.resolve_settings(mode, settings)}
        if not self.config["level_label_sd"] > 0:
            raise InputError(
                "generain.level_label_sd", f"expected a positive number of levels, got {self.config['level_label_sd']!r}"
            )
        path = data.path if isinstance(data, BinnedDataset) else data
        self.train_data = BinnedDataset(path, split="train")
        self.validation_data = BinnedDataset(path, split="validation")
        self.genes = self.train_data.genes
        self.setup = {"n_bins": self.train_data.n_bins, "n_genes": len(self.genes)}
        self.history = pd.DataFrame(columns=HISTORY_COLUMNS)
        self.training_info: dict = {}
        self.device = torch.device("cpu")
        c = self.config
        # Weights depend on the seed only, not on whatever ran before in this process.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = GeneRAINModule(
                variant, len(self.genes), c["d_model"], c["n_layers"], c["n_heads"], c["d_ff"], c["dropout"],
                c["layer_norm_eps"], c["seq_len"], c["n_levels"],
            )  # fmt: skip
            if variant == "bert_expression":
                mean, sd = self._gene_bin_stats()
                self.module.gene_bin_mean.copy_(mean)
                self.module.gene_bin_sd.copy_(sd)

    def _gene_bin_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and sd (floored at 1e-3) of each gene's bin over up to 10,000 evenly spaced training rows."""
        data = self.train_data
        picked = np.unique(np.linspace(0, len(data.rows) - 1, min(len(data.rows), GENE_STATS_ROWS)).astype(np.int64))
        total, squares = np.zeros(len(self.genes)), np.zeros(len(self.genes))
        for start in range(0, len(picked), FINGERPRINT_ROWS):
            rows = np.asarray(data.bins[data.rows[picked[start : start + FINGERPRINT_ROWS]]], dtype=np.float64)
            total += rows.sum(axis=0)
            squares += (rows**2).sum(axis=0)
        mean = total / len(picked)
        sd = np.sqrt(np.maximum(squares / len(picked) - mean**2, 0.0))
        return torch.from_numpy(mean).float(), torch.from_numpy(np.maximum(sd, 1e-3)).float()

    # --------------------------------------------------------------- base hooks
    @classmethod
    def _setup_from_saved(cls, data, setup: dict) -> None:
        """Nothing to register: a binned directory describes itself (its genes are checked on load)."""

    def fingerprint_parts(self):
        yield np.asarray(self.genes, dtype=str)
        for dataset in (self.train_data, self.validation_data):
            yield dataset.rows
            for start in range(0, len(dataset.rows), FINGERPRINT_ROWS):
                yield np.asarray(dataset.bins[dataset.rows[start : start + FINGERPRINT_ROWS]])

    # ----------------------------------------------------------------- batches
    def _batch_inputs(self, bins: torch.Tensor, generator: torch.Generator) -> tuple[dict, torch.Tensor]:
        """Model inputs and labels (IGNORE where unscored) for one mini-batch of bins."""
        c, variant = self.config, self.config["variant"]
        tokens = tokenize(
            bins, c["seq_len"], c["n_levels"], c["rank_ties"] == "stable",
            sorted_output=not (variant == "bert_expression" and c["rank_ties"] == "argsort"),
        )  # fmt: skip
        genes, levels, valid = tokens["genes"], tokens["levels"], tokens["valid"]
        if variant == "gpt":
            labels = genes[:, 1:].clone()
            if c["gpt_zero_labels"] == "ignored":
                labels[~valid[:, 1:]] = IGNORE
            return {"tokens": genes[:, :-1], "genes": genes[:, :-1], "valid": valid[:, :-1]}, labels
        chosen = (torch.rand(genes.shape, generator=generator) < c["mask_prob"]).to(bins.device) & valid
        draw = torch.rand(genes.shape, generator=generator).to(bins.device)
        if variant == "bert_genes":
            labels = torch.where(chosen, genes, IGNORE)
            if c["mask_token"] == "pad_id":
                return {"tokens": genes.masked_fill(chosen, PAD), "genes": genes, "valid": valid}, labels
            random_ids = torch.randint(FIRST_GENE, FIRST_GENE + len(self.genes), genes.shape, generator=generator)
            tokens = _mask_80_10_10(genes, chosen, draw, MASK, random_ids.to(bins.device))
            return {"tokens": tokens, "genes": genes, "valid": valid}, labels
        if c["expression_levels"] == "gene_centred":
            index = genes - FIRST_GENE
            levels = centred_levels(
                bins.gather(1, index).float(), valid, self.module.gene_bin_mean[index],
                self.module.gene_bin_sd[index], c["n_levels"],
            )  # fmt: skip
        labels = torch.where(chosen, levels, IGNORE)
        random_levels = torch.randint(1, c["n_levels"] + 1, levels.shape, generator=generator).to(bins.device)
        tokens = _mask_80_10_10(levels, chosen, draw, 0, random_levels)
        return {"tokens": tokens, "genes": genes, "valid": valid}, labels

    def _loss(self, bins: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        inputs, labels = self._batch_inputs(bins.to(self.device), generator)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            logits = self.module(**inputs)
        if not (labels != IGNORE).any():
            return logits.sum() * 0.0  # no scored position in this batch (keeps the graph)
        if self.config["variant"] == "bert_expression" and self.config["level_loss"] == "ordinal":
            scored = labels != IGNORE
            target = ordinal_targets(labels[scored], logits.shape[-1], self.config["level_label_sd"])
            return -(target * F.log_softmax(logits[scored].float(), dim=-1)).sum(dim=-1).mean()
        return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE)

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The training mini-batches of one epoch: a permutation seeded by (seed, epoch)."""
        order = np.random.default_rng([self.config["seed"], epoch]).permutation(len(self.train_data))
        size = self.config["batch_size"]
        return [order[i : i + size] for i in range(0, len(order), size)]

    def _rows(self, dataset: BinnedDataset, index: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(dataset.bins[dataset.rows[np.sort(index)]], dtype=np.int64))

    # ---------------------------------------------------------------- training
    def _scheduler(self, optimizer, max_steps: int):
        c = self.config
        if c["lr_schedule"] == "onecycle_epoch":
            return torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=c["lr"], total_steps=ONECYCLE_TOTAL, pct_start=c["warmup_fraction"],
                div_factor=ONECYCLE_DIV,
            )  # fmt: skip
        warmup = max(1, round(c["warmup_fraction"] * max_steps))
        final = c["final_lr_fraction"]

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
            return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

    def train(
        self,
        max_steps: int | None = None,
        device: str = "auto",
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 100,
        log_every: int = 100,
        progress_bar: bool | None = None,
    ) -> pd.DataFrame:
        """AdamW for ``max_steps`` optimiser steps of ``batch_size x grad_accumulation`` samples.

        ``accumulation="mean"`` divides each micro-batch loss by the accumulation steps (the
        gradient of the mean loss); ``"sum"`` adds them (the original). ``warmup_cosine`` steps the
        learning rate every optimiser step; ``onecycle_epoch`` once per epoch until epoch 30.
        Every ``eval_every`` steps (and at the end) a history row gets the mean training loss since
        the last row and the validation loss (fixed masks). bf16 autocast on CUDA.

        With ``checkpoint_dir`` the full training state is saved every ``checkpoint_every`` steps
        and at the end; training again with the same directory resumes (on CPU with exactly the
        numbers of an uninterrupted run) unless the data, settings or ``max_steps`` differ.
        """
        c = self.config
        max_steps = int(max_steps or c["max_steps"])
        seed_everything(c["seed"])
        self.device = resolve_device(device)
        self.module.to(self.device).train()
        optimizer = torch.optim.AdamW(self.module.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
        scheduler = self._scheduler(optimizer, max_steps)
        masks = torch.Generator().manual_seed(c["seed"])
        accumulation = int(c["grad_accumulation"])
        state = {"step": 0, "epoch": 0, "batch": 0, "rows": [], "running": [0.0, 0], "seconds": 0.0}
        checkpoint = self._checkpoint_path(checkpoint_dir)
        fingerprint = self.data_fingerprint() if checkpoint is not None else ""
        payload = self._read_checkpoint(checkpoint, fingerprint, max_steps, self.device)
        if payload is not None:
            self.module.load_state_dict(payload["module"])
            optimizer.load_state_dict(payload["optimizer"])
            scheduler.load_state_dict(payload["scheduler"])
            masks.set_state(payload["masks"])
            state = payload["state"]
            logger.info("resumed from %s at step %d", checkpoint, state["step"])
        progress = ProgressReporter(max_steps, f"GeneRAIN[{c['variant']}, {c['mode']}, seed {c['seed']}]",
                                    log_every, bar=progress_bar)  # fmt: skip
        started = time.perf_counter()
        batches = self._epoch_batches(state["epoch"])
        while state["step"] < max_steps:
            optimizer.zero_grad(set_to_none=True)
            for _ in range(accumulation):
                if state["batch"] == len(batches):
                    state["epoch"], state["batch"] = state["epoch"] + 1, 0
                    batches = self._epoch_batches(state["epoch"])
                    if c["lr_schedule"] == "onecycle_epoch" and state["epoch"] < ONECYCLE_FREEZE:
                        scheduler.step()
                loss = self._loss(self._rows(self.train_data, batches[state["batch"]]), masks)
                state["batch"] += 1
                (loss / accumulation if c["accumulation"] == "mean" else loss).backward()
                state["running"][0] += loss.item()
                state["running"][1] += 1
            optimizer.step()
            if c["lr_schedule"] == "warmup_cosine":
                scheduler.step()
            state["step"] += 1
            step = state["step"]
            if step % c["eval_every"] == 0 or step == max_steps:
                train_loss = state["running"][0] / max(1, state["running"][1])
                state["running"] = [0.0, 0]
                row = (step, state["epoch"], optimizer.param_groups[0]["lr"], train_loss, self.validation_loss())
                state["rows"].append(row)
                progress.update(step, train_loss=row[3], val_loss=row[4])
            if checkpoint is not None and (step % checkpoint_every == 0 or step == max_steps):
                now = time.perf_counter()
                state["seconds"] += now - started
                started = now
                self._write_checkpoint(checkpoint, fingerprint, max_steps, {
                    "module": self.module.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "masks": masks.get_state(), "state": state,
                })  # fmt: skip
        state["seconds"] += time.perf_counter() - started
        last = state["rows"][-1] if state["rows"] else (0, 0, float("nan"), float("nan"), float("nan"))
        progress.close(state["step"], "step cap", train_loss=last[3], val_loss=last[4])
        self.module.eval()
        self.history = pd.DataFrame(state["rows"], columns=HISTORY_COLUMNS)
        self.training_info = {
            "steps": state["step"],
            "epochs": state["epoch"],
            "max_steps": max_steps,
            "samples_per_step": c["batch_size"] * accumulation,
            "train_seconds": state["seconds"],
            "device": str(self.device),
        }
        return self.history

    @torch.no_grad()
    def validation_loss(self) -> float:
        """Mean loss over (up to 64) validation mini-batches with masks fixed by the seed."""
        was_training = self.module.training
        self.module.eval()
        masks = torch.Generator().manual_seed(self.config["seed"] + 1)
        size = self.config["batch_size"]
        n = min(len(self.validation_data), VALIDATION_BATCHES * size)
        losses = [self._loss(self._rows(self.validation_data, np.arange(i, min(i + size, n))), masks).item()
                  for i in range(0, n, size)]  # fmt: skip
        self.module.train(was_training)
        return float(np.mean(losses))

    # ----------------------------------------------------------------- outputs
    def get_gene_embedding(self) -> pd.DataFrame:
        """GeneRAIN-vec: genes x ``d_model`` (the gene token embedding; for ``bert_expression`` the
        gene-identity embedding)."""
        vectors = self.module.gene_vectors().float().cpu().numpy()
        return pd.DataFrame(vectors, index=pd.Index(self.trained_genes(), name="gene"),
                            columns=[f"dim{k + 1}" for k in range(vectors.shape[1])])  # fmt: skip


def _mask_80_10_10(values, chosen, draw, mask_value, random_values):
    """BERT corruption at ``chosen``: 80 % -> mask_value, 10 % -> a random value, 10 % unchanged."""
    out = values.masked_fill(chosen & (draw < 0.8), mask_value)
    return torch.where(chosen & (draw >= 0.8) & (draw < 0.9), random_values, out)
