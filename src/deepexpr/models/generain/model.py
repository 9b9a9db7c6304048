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

import contextlib
import logging
import math
import os
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from deepexpr.data.archs4.binning import BinnedDataset
from deepexpr.errors import InputError
from deepexpr.models._base import BaseModel, ProgressReporter, resolve_device, seed_everything
from deepexpr.models.generain.distributed import (
    Ranks,
    barrier,
    from_main,
    gather_objects,
    init_process_group,
    sum_across_ranks,
)
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

    def _loss(self, bins: torch.Tensor, generator: torch.Generator, network: nn.Module | None = None) -> torch.Tensor:
        """Loss of one mini-batch; ``network`` is the module or its DistributedDataParallel wrapper."""
        inputs, labels = self._batch_inputs(bins.to(self.device), generator)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            logits = (network or self.module)(**inputs)
        if not (labels != IGNORE).any():
            return logits.sum() * 0.0  # no scored position in this batch (keeps the graph)
        if self.config["variant"] == "bert_expression" and self.config["level_loss"] == "ordinal":
            scored = labels != IGNORE
            target = ordinal_targets(labels[scored], logits.shape[-1], self.config["level_label_sd"])
            return -(target * F.log_softmax(logits[scored].float(), dim=-1)).sum(dim=-1).mean()
        return F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE)

    def _epoch_batches(self, epoch: int, ranks: Ranks | None = None) -> list[np.ndarray]:
        """The training mini-batches of one epoch: a permutation seeded by (seed, epoch).

        Under torchrun (``ranks.distributed``) this rank's shard of a DistributedSampler permutation
        seeded by (seed, epoch): disjoint across ranks, the remainder dropped so that every rank runs
        the same number of micro-batches (DDP needs every rank in every gradient exchange).
        """
        if ranks is not None and ranks.distributed:
            sampler = DistributedSampler(self.train_data, num_replicas=ranks.world_size, rank=ranks.rank,
                                         shuffle=True, seed=self.config["seed"], drop_last=True)  # fmt: skip
            sampler.set_epoch(epoch)
            order = np.fromiter(sampler, dtype=np.int64)
        else:
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

        Launched by torchrun (``WORLD_SIZE`` > 1) it trains data-parallel: one process per GPU
        (``cuda:LOCAL_RANK``; gloo on CPU), the module wrapped in DistributedDataParallel, each rank
        on its own shard of every epoch, so one optimiser step sees ``world_size`` times the samples
        and the gradient is the mean over ranks. Losses in the history are means over all ranks;
        only rank 0 writes the checkpoint, which holds every rank's masks and RNG state, so all ranks
        resume (with the same number of processes).
        """
        c = self.config
        max_steps = int(max_steps or c["max_steps"])
        ranks = Ranks.from_env()
        seed_everything(c["seed"])
        self.device = resolve_device(device)
        if ranks.distributed:
            self.device = init_process_group(ranks, self.device)
            if len(self.train_data) < ranks.world_size:
                raise InputError(self.train_data.path, f"{len(self.train_data)} training samples cannot be "
                                 f"shared among {ranks.world_size} processes")  # fmt: skip
            # Weights start equal on every rank (seeded in __init__); dropout differs per rank.
            torch.manual_seed(_rank_seed(c["seed"], ranks.rank))
        self.module.to(self.device).train()
        optimizer = torch.optim.AdamW(self.module.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
        scheduler = self._scheduler(optimizer, max_steps)
        masks = torch.Generator().manual_seed(_rank_seed(c["seed"], ranks.rank) if ranks.distributed else c["seed"])
        accumulation = int(c["grad_accumulation"])
        state = {"step": 0, "epoch": 0, "batch": 0, "rows": [], "running": [0.0, 0], "seconds": 0.0}
        checkpoint = self._checkpoint_path(checkpoint_dir)
        fingerprint = ""
        if checkpoint is not None and ranks.distributed:
            # One rank reads the whole data set for it, not all of them.
            fingerprint = from_main(self.data_fingerprint() if ranks.main else None)
        elif checkpoint is not None:
            fingerprint = self.data_fingerprint()
        payload = self._resume_payload(checkpoint, fingerprint, max_steps, ranks)
        if payload is not None:
            self.module.load_state_dict(payload["module"])
            optimizer.load_state_dict(payload["optimizer"])
            scheduler.load_state_dict(payload["scheduler"])
            state = payload["state"]
            if ranks.distributed:
                own = payload["ranks"][ranks.rank]
                masks.set_state(own["masks"].cpu())
                torch.set_rng_state(own["torch_rng"].cpu())
                state["running"] = own["running"]
            else:
                masks.set_state(payload["masks"])
            logger.info("resumed from %s at step %d", checkpoint, state["step"])
        network = self.module
        if ranks.distributed:
            device_ids = [self.device] if self.device.type == "cuda" else None
            network = DistributedDataParallel(self.module, device_ids=device_ids)
        progress = ProgressReporter(max_steps, f"GeneRAIN[{c['variant']}, {c['mode']}, seed {c['seed']}]",
                                    log_every, bar=progress_bar if ranks.main else False)  # fmt: skip
        started = time.perf_counter()
        batches = self._epoch_batches(state["epoch"], ranks)
        while state["step"] < max_steps:
            optimizer.zero_grad(set_to_none=True)
            for micro in range(accumulation):
                if state["batch"] == len(batches):
                    state["epoch"], state["batch"] = state["epoch"] + 1, 0
                    batches = self._epoch_batches(state["epoch"], ranks)
                    if c["lr_schedule"] == "onecycle_epoch" and state["epoch"] < ONECYCLE_FREEZE:
                        scheduler.step()
                # DDP averages the gradients over ranks once per optimiser step: at the last micro-batch.
                local = ranks.distributed and micro < accumulation - 1
                with network.no_sync() if local else contextlib.nullcontext():
                    loss = self._loss(self._rows(self.train_data, batches[state["batch"]]), masks, network)
                    (loss / accumulation if c["accumulation"] == "mean" else loss).backward()
                state["batch"] += 1
                state["running"][0] += loss.item()
                state["running"][1] += 1
            optimizer.step()
            if c["lr_schedule"] == "warmup_cosine":
                scheduler.step()
            state["step"] += 1
            step = state["step"]
            if step % c["eval_every"] == 0 or step == max_steps:
                running = sum_across_ranks(state["running"], self.device) if ranks.distributed else state["running"]
                train_loss = running[0] / max(1, running[1])
                state["running"] = [0.0, 0]
                row = (step, state["epoch"], optimizer.param_groups[0]["lr"], train_loss, self.validation_loss(ranks))
                state["rows"].append(row)
                progress.update(step, train_loss=row[3], val_loss=row[4])
            if checkpoint is not None and (step % checkpoint_every == 0 or step == max_steps):
                now = time.perf_counter()
                state["seconds"] += now - started
                started = now
                payload = {
                    "module": self.module.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "masks": masks.get_state(), "state": state,
                }  # fmt: skip
                if ranks.distributed:
                    self._write_shared_checkpoint(checkpoint, fingerprint, max_steps, payload, ranks)
                else:
                    self._write_checkpoint(checkpoint, fingerprint, max_steps, payload)
        state["seconds"] += time.perf_counter() - started
        last = state["rows"][-1] if state["rows"] else (0, 0, float("nan"), float("nan"), float("nan"))
        progress.close(state["step"], "step cap", train_loss=last[3], val_loss=last[4])
        self.module.eval()
        self.history = pd.DataFrame(state["rows"], columns=HISTORY_COLUMNS)
        self.training_info = {
            "steps": state["step"],
            "epochs": state["epoch"],
            "max_steps": max_steps,
            "samples_per_step": c["batch_size"] * accumulation * ranks.world_size,
            "train_seconds": state["seconds"],
            "device": str(self.device),
        }
        if ranks.distributed:
            self.training_info["world_size"] = ranks.world_size
        return self.history

    def _resume_payload(self, checkpoint, fingerprint: str, max_steps: int, ranks: Ranks) -> dict | None:
        """The checkpoint to resume from, if it matches this run, including its number of processes."""
        if not ranks.distributed:
            payload = self._read_checkpoint(checkpoint, fingerprint, max_steps, self.device)
        else:
            # Rank 0 first: it deletes a stale checkpoint before the other ranks look at it.
            payload = self._read_checkpoint(checkpoint, fingerprint, max_steps, self.device) if ranks.main else None
            barrier()
            if not ranks.main:
                payload = self._read_checkpoint(checkpoint, fingerprint, max_steps, self.device)
        written_by = len(payload.get("ranks", [None])) if payload is not None else ranks.world_size
        if written_by != ranks.world_size:
            logger.warning("not resuming %s: written by %d processes, this run has %d; training starts over",
                           checkpoint, written_by, ranks.world_size)  # fmt: skip
            # Reading it restored its RNG state: seed again as a fresh run does.
            torch.manual_seed(_rank_seed(self.config["seed"], ranks.rank) if ranks.distributed else self.config["seed"])
            return None
        return payload

    def _write_shared_checkpoint(self, checkpoint, fingerprint: str, max_steps: int, payload: dict, ranks: Ranks):
        """Rank 0 writes the checkpoint with every rank's masks, RNG and running loss; all ranks wait for it."""
        state = payload["state"]
        own = {"masks": payload["masks"], "torch_rng": torch.get_rng_state(), "running": list(state["running"])}
        payload = {**payload, "ranks": gather_objects(own)}
        if ranks.main:
            self._write_checkpoint(checkpoint, fingerprint, max_steps, payload)
        barrier()

    @torch.no_grad()
    def validation_loss(self, ranks: Ranks | None = None) -> float:
        """Mean loss over (up to 64) validation mini-batches with masks fixed by the seed.

        Under torchrun (``ranks`` from :meth:`train`) each rank scores every ``world_size``-th of
        those batches with masks fixed by (seed, rank), and the mean is taken over all ranks' batches.
        """
        was_training = self.module.training
        self.module.eval()
        shared = ranks is not None and ranks.distributed
        masks = torch.Generator().manual_seed(_rank_seed(self.config["seed"] + 1, ranks.rank) if shared
                                              else self.config["seed"] + 1)  # fmt: skip
        size = self.config["batch_size"]
        n = min(len(self.validation_data), VALIDATION_BATCHES * size)
        starts = range(0, n, size)[ranks.rank :: ranks.world_size] if shared else range(0, n, size)
        losses = [self._loss(self._rows(self.validation_data, np.arange(i, min(i + size, n))), masks).item()
                  for i in starts]  # fmt: skip
        self.module.train(was_training)
        if not shared:
            return float(np.mean(losses))
        total, count = sum_across_ranks([sum(losses), len(losses)], self.device)
        return total / count

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


def _rank_seed(seed: int, rank: int) -> int:
    """A seed of its own for each torchrun rank (so ranks draw different masks and dropout)."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])
