"""siVAE: interpretable cell and gene embeddings from a cell VAE and a feature (gene) VAE.

Re-implements quon-titative-biology/siVAE (Choi, Li, Quon 2023; docs/models/sivae.md) in two
modes. ``faithful`` keeps the original's behaviour (gamma 0, feature input from all cells, all
genes every step, beta warm-up on the cell VAE's own counter, Gaussian encoder even without
KL); ``corrected`` (default) applies S1-S3 and S6. Each is a constructor switch; ``mode`` only
sets the defaults.

Use: ``SIVAE.setup_anndata(adata)`` -> ``SIVAE(adata, mode, seed, **settings)`` -> ``train()``
-> ``get_cell_embedding()`` / ``get_gene_embedding()`` / ``annotate()`` -> ``save``/``load``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn

from deepexpr.errors import InputError
from deepexpr.genes import embedding_neighbours, norm_hub_score, reconstruction_hub_score
from deepexpr.models._base import BaseModel, ProgressReporter, resolve_device, seed_everything
from deepexpr.models.sivae.module import SIVAEModule, gaussian_nll, kl_normal, nb_nll
from deepexpr.models.sivae.settings import MODE_DEFAULTS, SWITCHES

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ["stage", "epoch", "loss", "reconstruction", "kl", "interpretability", "beta"]
STAGES = ("cell", "feature", "joint")
#: Normalised library size of the log-normalised input (counts per 10,000, as the original).
TARGET_SUM = 1e4


class SIVAE(BaseModel):
    """User-facing siVAE for one dataset and one seed.

    ``settings`` are the keys of :data:`~deepexpr.models.sivae.settings.MODE_DEFAULTS`; None
    takes the ``mode``'s default. ``feature_input`` (genes x features, rows in the data's gene
    order) replaces the feature input the model would build (cell subsample or PCA); its width
    then sets the feature VAE's input size and ``feature_dim`` is unused.
    """

    NAME = "sivae"
    SWITCHES = SWITCHES
    MODE_DEFAULTS = MODE_DEFAULTS
    EXTRA_SETTINGS = ("feature_input",)
    SETUP_KEY = "sivae_setup"
    HISTORY_COLUMNS = HISTORY_COLUMNS

    def __init__(self, adata: ad.AnnData, mode: str = "corrected", seed: int = 0, feature_input=None, **settings):
        self.config = {"mode": mode, "seed": seed, **self.resolve_settings(mode, settings)}
        self.config["hidden"] = tuple(int(h) for h in self.config["hidden"])
        _validate(self.config)
        self.adata = adata
        self.setup = self.registration(adata)
        self.genes = adata.var_names.copy()
        self.counts = _registered_counts(adata, self.setup)
        self.library = self.counts.sum(axis=1)
        if (self.library <= 0).any():
            raise InputError("AnnData", f"{int((self.library <= 0).sum())} cells have no counts; filter them first")
        self.train_idx = self._split()
        log_norm = np.log1p(self.counts / self.library[:, None] * TARGET_SUM)
        # The z-score uses the cells the feature input may see, so test cells never shape training (S2).
        source = self._feature_source_cells()
        center, scale = log_norm[source].mean(axis=0), log_norm[source].std(axis=0)
        scale[scale == 0] = 1.0
        self.scaled = (log_norm - center) / scale
        # Gaussian: the scaled values are input and target; NB: log-normalised input, counts target.
        self.encoder_input = self.scaled if self.config["likelihood"] == "gaussian" else log_norm
        self.target_values = self.scaled if self.config["likelihood"] == "gaussian" else log_norm
        self.feature_input = self._feature_input(feature_input, source)
        self.history = pd.DataFrame(columns=HISTORY_COLUMNS)
        self.training_info: dict = {}
        self.device = torch.device("cpu")
        # Weights depend on the seed only, not on whatever ran before in this process.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = SIVAEModule(
                len(self.genes),
                self.feature_input.shape[1],
                self.config["hidden"],
                self.config["latent_dim"],
                self.config["likelihood"],
            )
        # Saved with the weights, so a loaded model embeds genes from the very same input.
        self.module.register_buffer("feature_input", torch.as_tensor(self.feature_input))
        if self.config["likelihood"] == "nb":
            with torch.no_grad():  # start at each gene's mean normalised expression
                mean = (self.counts / self.library[:, None] * TARGET_SUM).mean(axis=0)
                self.module.bias.copy_(torch.as_tensor(np.log(mean + 1e-8)))
                self.module.zv_bias.copy_(self.module.bias)

    # ------------------------------------------------------------ registration
    @staticmethod
    def setup_anndata(adata: ad.AnnData, layer: str | None = "counts", label_key: str | None = None) -> None:
        """Register where the raw counts live (``layer`` None = X) and, optionally, the cell labels
        used to stratify the train/test split; checks both (an InputError names the problem)."""
        setup = {"layer": layer or "", "label_key": label_key or ""}
        _registered_counts(adata, setup)
        if label_key and label_key not in adata.obs:
            raise InputError(
                "AnnData", f"obs has no column {label_key!r} (columns: {', '.join(adata.obs.columns) or 'none'})"
            )
        SIVAE._store_registration(adata, setup)

    @classmethod
    def _setup_from_saved(cls, adata, setup: dict) -> None:
        cls.setup_anndata(adata, layer=setup["layer"] or None, label_key=setup["label_key"] or None)

    @classmethod
    def _saved_extras(cls, state: dict) -> dict:
        # The feature input is part of the model (a PCA or subsample fitted at construction).
        return {"feature_input": state["modules"]["module"]["feature_input"].numpy()}

    # --------------------------------------------------------------- base hooks
    def fingerprint_parts(self):
        yield np.asarray(self.genes, dtype=str)
        yield self.counts
        yield self.feature_input
        yield self.train_idx

    # -------------------------------------------------------------- data prep
    def _split(self) -> np.ndarray:
        """Training cells (sorted indices): a seeded, label-stratified share ``train_fraction``."""
        n = len(self.counts)
        fraction = float(self.config["train_fraction"])
        if fraction >= 1.0:
            return np.arange(n)
        from sklearn.model_selection import train_test_split

        labels = None
        if self.setup["label_key"]:
            labels = self.adata.obs[self.setup["label_key"]].astype(str).to_numpy()
            if pd.Series(labels).value_counts().min() < 2:
                labels = None  # a singleton class cannot be stratified; fall back to a plain split
        train, _ = train_test_split(
            np.arange(n), train_size=fraction, random_state=self.config["seed"], stratify=labels
        )
        return np.sort(train)

    def _feature_source_cells(self) -> np.ndarray:
        return self.train_idx if self.config["feature_cells_from"] == "train" else np.arange(len(self.counts))

    def _feature_input(self, given, source: np.ndarray) -> np.ndarray:
        """Genes x features: each gene's scaled values over a fixed cell subsample, or their PCA
        over those cells, built from ``source`` cells only (training cells in corrected mode)."""
        n_genes = len(self.genes)
        if given is not None:
            values = np.asarray(given, dtype=np.float32)
            if values.ndim != 2 or values.shape[0] != n_genes:
                raise InputError(
                    "sivae.feature_input",
                    f"expected one row per gene of the cell input ({n_genes} genes), got shape {values.shape}",
                )
            return values
        dim = int(self.config["feature_dim"])
        if dim > len(source):
            raise InputError(
                "sivae.feature_dim",
                f"the feature input needs at least feature_dim={dim} {self.config['feature_cells_from']!r} cells, "
                f"got {len(source)}; lower feature_dim",
            )
        genes_by_cells = self.scaled[source].T
        if self.config["feature_reduction"] == "subsample":
            rng = np.random.default_rng(self.config["seed"])
            return genes_by_cells[:, np.sort(rng.choice(len(source), dim, replace=False))].astype(np.float32)
        if dim > n_genes:
            raise InputError("sivae.feature_dim", f"PCA gives at most {n_genes} components (one per gene), got {dim}")
        from sklearn.decomposition import PCA

        return PCA(n_components=dim, random_state=self.config["seed"]).fit_transform(genes_by_cells).astype(np.float32)

    def _tensors(self) -> dict[str, torch.Tensor]:
        def tensor(values):
            return torch.as_tensor(np.asarray(values), dtype=torch.float32, device=self.device)

        return {
            "input": tensor(self.encoder_input),
            "target": tensor(self.scaled if self.config["likelihood"] == "gaussian" else self.counts),
            "log_library": tensor(np.log(self.library / TARGET_SUM))[:, None],
            "feature": tensor(self.feature_input),
        }

    # --------------------------------------------------------------- training
    def _nll(self, data, cells, genes, prediction: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """-log p of the (cells x genes) block given the prediction (Gaussian mean or NB log rate);
        ``y`` (the cell decoder's output) gives the Gaussian's per-cell sd."""
        target = data["target"][cells][:, genes]
        if self.config["likelihood"] == "gaussian":
            return gaussian_nll(target, prediction, self.module.cell_log_sd(y))
        return nb_nll(target, prediction + data["log_library"][cells], self.module.log_theta[genes])

    def _cell_step(self, data, cells, beta: float):
        m = self.module
        mean, logvar = m.cell_encoder(data["input"][cells])
        z = m.sample(mean, logvar, self._stochastic)
        y = m.cell_decoder(z)
        recon = self._nll(data, cells, slice(None), y @ m.output_weight.T + m.bias, y).sum(1).mean()
        kl = kl_normal(mean, logvar).mean() if self.config["vae"] else torch.zeros((), device=z.device)
        return recon + beta * kl, recon, kl, torch.zeros(())

    def _feature_step(self, data, genes):
        m = self.module
        mean, logvar = m.feature_encoder(data["feature"][genes])
        w = m.feature_decoder(m.sample(mean, logvar, self._stochastic))
        recon = (w - m.output_weight[genes].detach()).pow(2).sum(1).mean()
        kl = kl_normal(mean, logvar).mean() if self.config["vae"] else torch.zeros((), device=w.device)
        return recon + kl, recon, kl, torch.zeros(())

    def _joint_step(self, data, cells, genes, beta: float):
        m = self.module
        n_genes, n_train = len(self.genes), len(self.train_idx)
        scale = n_genes / len(genes)  # a gene mini-batch stands for all genes (unbiased sum)
        mean_z, logvar_z = m.cell_encoder(data["input"][cells])
        z = m.sample(mean_z, logvar_z, self._stochastic)
        y = m.cell_decoder(z)
        mean_v, logvar_v = m.feature_encoder(data["feature"][genes])
        v = m.sample(mean_v, logvar_v, self._stochastic)
        w = m.feature_decoder(v)
        recon = self._nll(data, cells, genes, y @ w.T + m.bias[genes], y).sum(1).mean() * scale
        zero = torch.zeros((), device=z.device)
        kl_z = kl_normal(mean_z, logvar_z).mean() if self.config["vae"] else zero
        # every gene's KL once per pass over the cells: per cell it weighs 1 / n_train
        kl_v = kl_normal(mean_v, logvar_v).sum() * scale / n_train if self.config["vae"] else zero
        interpretability = zero
        if self.config["gamma"] > 0:
            linear = z @ v.T + m.zv_bias[genes]
            if self.config["likelihood"] == "gaussian":
                error = (data["target"][cells][:, genes] - linear).pow(2)
            else:
                error = self._nll(data, cells, genes, linear, None)
            interpretability = self.config["gamma"] * error.sum(1).mean() * scale
        loss = recon + beta * kl_z + kl_v + interpretability
        return loss, recon, kl_z + kl_v, interpretability

    @property
    def _stochastic(self) -> bool:
        # S6: without KL, faithful still samples from its Gaussian encoder; corrected is deterministic.
        return self.config["vae"] or self.config["encoder_type"] == "always_gaussian"

    def _schedule(self) -> list[str]:
        return [stage for stage in STAGES for _ in range(int(self.config[f"{stage}_epochs"]))]

    def train(
        self,
        device: str = "auto",
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 10,
        log_every: int = 10,
        progress_bar: bool | None = None,
        callback: Callable[[int, dict], None] | None = None,
    ) -> pd.DataFrame:
        """The three-stage schedule (cell VAE, feature VAE, joint) for the configured epochs.

        An epoch of the cell and joint stages is one pass over the training cells in
        mini-batches of ``batch_size``; in the joint stage each cell batch meets a random gene
        batch of ``gene_batch_size`` (0 = all genes). A feature-stage epoch is one pass over the
        genes. beta rises linearly over ``warmup_steps`` optimiser steps counted as ``beta_warmup``
        says (S3). With ``checkpoint_dir`` the state is saved every ``checkpoint_every`` epochs and
        at the end of each stage; training again resumes there unless the data or settings differ.
        """
        seed_everything(self.config["seed"])
        self.device = resolve_device(device)
        self.module.to(self.device).train()
        data = self._tensors()
        groups = [
            {"params": self.module.cell_parameters(), "weight_decay": float(self.config["l2"])},
            {"params": self.module.feature_parameters(), "weight_decay": float(self.config["feature_l2"])},
        ]
        optimizer = torch.optim.Adam(groups, lr=float(self.config["lr"]))
        schedule = self._schedule()
        progress = ProgressReporter(
            len(schedule), f"siVAE[{self.config['mode']}, seed {self.config['seed']}]", log_every, bar=progress_bar
        )
        rows, seconds, steps = [], 0.0, {"global": 0, "cell": 0}
        checkpoint = self._checkpoint_path(checkpoint_dir)
        fingerprint = self.data_fingerprint() if checkpoint is not None else ""
        payload = self._read_checkpoint(checkpoint, fingerprint, len(schedule), self.device)
        if payload is not None:
            self.module.load_state_dict(payload["module"])
            optimizer.load_state_dict(payload["optimizer"])
            rows, seconds, steps = list(payload["rows"]), payload["seconds"], dict(payload["steps"])
            logger.info("resumed from %s at epoch %d", checkpoint, len(rows))
        started = time.perf_counter()
        train = torch.as_tensor(self.train_idx, device=self.device)
        n_genes, batch = len(self.genes), int(self.config["batch_size"])
        gene_batch = int(self.config["gene_batch_size"]) or n_genes
        warmup = int(self.config["warmup_steps"])
        for position in range(len(rows), len(schedule)):
            stage = schedule[position]
            stage_epoch = sum(1 for r in rows if r[0] == stage) + 1
            totals = np.zeros(4)
            if stage == "feature":
                order = torch.randperm(n_genes, device=self.device)
                batches = [order[i : i + gene_batch] for i in range(0, n_genes, gene_batch)]
            else:
                order = train[torch.randperm(len(train), device=self.device)]
                batches = [order[i : i + batch] for i in range(0, len(order), batch)]
            for block in batches:
                counter = steps["cell"] if self.config["beta_warmup"] == "cell_counter" else steps["global"]
                beta = min(1.0, counter / warmup) if warmup else 1.0
                if stage == "cell":
                    terms = self._cell_step(data, block, beta)
                elif stage == "feature":
                    terms = self._feature_step(data, block)
                else:
                    genes = (
                        torch.randperm(n_genes, device=self.device)[:gene_batch]
                        if gene_batch < n_genes
                        else torch.arange(n_genes, device=self.device)
                    )
                    terms = self._joint_step(data, block, genes, beta)
                optimizer.zero_grad(set_to_none=True)
                terms[0].backward()
                if stage != "cell":
                    nn.utils.clip_grad_norm_(self.module.parameters(), float(self.config["grad_clip"]))
                optimizer.step()
                steps["global"] += 1
                steps["cell"] += stage == "cell"
                totals += [t.item() for t in terms]
            totals /= len(batches)
            if not math.isfinite(totals[0]):
                raise FloatingPointError(f"siVAE loss became {totals[0]} in the {stage} stage, epoch {stage_epoch}")
            rows.append((stage, stage_epoch, *totals.tolist(), beta if stage != "feature" else 1.0))
            progress.update(position + 1, loss=totals[0])
            stage_end = position + 1 == len(schedule) or schedule[position + 1] != stage
            if checkpoint is not None and (stage_end or (position + 1) % checkpoint_every == 0):
                state = {
                    "module": self.module.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "rows": rows,
                    "seconds": seconds + time.perf_counter() - started,
                    "steps": steps,
                }
                self._write_checkpoint(checkpoint, fingerprint, len(schedule), state)
            if callback is not None:
                callback(position + 1, dict(zip(HISTORY_COLUMNS, rows[-1])))
        progress.close(len(rows), "schedule done", loss=rows[-1][2] if rows else float("nan"))
        self.module.eval()
        self.history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
        self.training_info = {
            "epochs": len(rows),
            "steps": steps["global"],
            "train_seconds": seconds + time.perf_counter() - started,
            "device": str(self.device),
            "n_train_cells": int(len(self.train_idx)),
        }
        return self.history

    # ---------------------------------------------------------------- outputs
    @torch.no_grad()
    def _embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.module.eval()
        data = self._tensors()
        z, _ = self.module.cell_encoder(data["input"])
        v, _ = self.module.feature_encoder(data["feature"])
        return z, v

    def get_cell_embedding(self) -> pd.DataFrame:
        """Posterior means of z, cells x (z1..zK)."""
        z, _ = self._embeddings()
        return pd.DataFrame(
            z.cpu().numpy(), index=self.adata.obs_names.copy(), columns=[f"z{k + 1}" for k in range(z.shape[1])]
        )

    def get_gene_embedding(self) -> pd.DataFrame:
        """Posterior means of v, genes x (v1..vK): siVAE's gene loadings."""
        _, v = self._embeddings()
        return pd.DataFrame(v.cpu().numpy(), index=self.genes.copy(), columns=[f"v{k + 1}" for k in range(v.shape[1])])

    def plain_decoder(self) -> nn.Module:
        """The cell VAE's own decoder z -> y W^T + b (stage 1): a plain VAE decoder of the same size.

        Trained alone (``feature_epochs=0, joint_epochs=0``) the model is the plain VAE baseline;
        its decoder is what post-hoc attribution (:func:`deepexpr.genes.loadings.attribution_loadings`) explains.
        """
        return _PlainDecoder(self.module).to(self.device).eval()

    def cell_means(self) -> torch.Tensor:
        """Posterior means of z as a tensor (the attribution inputs)."""
        return self._embeddings()[0]

    @torch.no_grad()
    def reconstruct(self) -> np.ndarray:
        """Cells x genes reconstruction from the posterior means, on the target's scale (scaled
        values for Gaussian, log-normalised expression for NB)."""
        z, v = self._embeddings()
        m = self.module
        prediction = m.cell_decoder(z) @ m.feature_decoder(v).T + m.bias
        if self.config["likelihood"] == "nb":
            prediction = torch.log1p(prediction.exp())  # rate per 10,000 -> log1p, as the input
        return prediction.cpu().numpy()

    @torch.no_grad()
    def feature_awareness(self) -> pd.DataFrame:
        """Per gene and layer pair (latent, each decoder layer), the share of the gene's variance
        explained by (cell layer) . (feature layer) plus a per-gene intercept, against a mean-only
        baseline; ``output`` is the model's last layer."""
        z, v = self._embeddings()
        pairs = [("latent", z, v)]
        cell_layers, feature_layers = self.module.cell_decoder.layers(z), self.module.feature_decoder.layers(v)
        names = [f"layer{i + 1}" for i in range(len(cell_layers) - 1)] + ["output"]
        pairs += list(zip(names, cell_layers, feature_layers))
        x = torch.as_tensor(self.target_values, dtype=torch.float32, device=z.device)
        total = (x - x.mean(0)).pow(2).sum(0).clamp_min(1e-12)
        scores = {}
        for name, cell, feature in pairs:
            residual = x - cell @ feature.T
            residual = residual - residual.mean(0)
            scores[name] = (1 - residual.pow(2).sum(0) / total).cpu().numpy()
        return pd.DataFrame(scores, index=self.genes.copy())

    def annotate(self, adata: ad.AnnData | None = None, k: int = 20) -> ad.AnnData:
        """Write the outputs into ``adata`` (default: the training AnnData) and return it.

        obsm["X_sivae"] cell embedding; obs["sivae_split"] train/test; varm["sivae_loadings"]
        gene embedding; var["sivae_hub_reconstruction"] (1 - per-gene MSE), var["sivae_hub_norm"]
        (-||v_g||), var["sivae_feature_awareness"] (output layer); uns["sivae_neighbours"] the
        top-k genes nearest each gene in v (genes x k names); uns["sivae"] settings and training info.
        """
        adata = self.adata if adata is None else adata
        if list(adata.var_names) != list(self.genes) or list(adata.obs_names) != list(self.adata.obs_names):
            raise InputError(
                "AnnData", "annotate() needs the cells and genes the model was built on, in the same order"
            )
        genes_embedding = self.get_gene_embedding()
        adata.obsm["X_sivae"] = self.get_cell_embedding().to_numpy()
        split = np.full(adata.n_obs, "test", dtype=object)
        split[self.train_idx] = "train"
        adata.obs["sivae_split"] = pd.Categorical(split)
        adata.varm["sivae_loadings"] = genes_embedding.to_numpy()
        adata.var["sivae_hub_reconstruction"] = reconstruction_hub_score(
            self.target_values, self.reconstruct(), self.genes
        ).to_numpy()
        adata.var["sivae_hub_norm"] = norm_hub_score(genes_embedding).to_numpy()
        adata.var["sivae_feature_awareness"] = self.feature_awareness()["output"].to_numpy()
        adata.uns["sivae_neighbours"] = embedding_neighbours(genes_embedding, k).to_numpy().astype(str)
        adata.uns["sivae"] = {
            "settings": {k_: (list(v) if isinstance(v, tuple) else v) for k_, v in self.config.items()},
            "training": dict(self.training_info),
        }
        return adata


class _PlainDecoder(nn.Module):
    def __init__(self, module: SIVAEModule):
        super().__init__()
        self.module = module

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.module.cell_decoder(z) @ self.module.output_weight.T + self.module.bias

    def linear_output(self) -> tuple[nn.Module, torch.Tensor]:
        """(the network z -> y, the output weight W): forward(z) = y(z) @ W^T + b, for attribution."""
        return self.module.cell_decoder, self.module.output_weight


def _validate(config: dict) -> None:
    if not float(config["gamma"]) >= 0:
        raise InputError("sivae.gamma", f"expected gamma >= 0 (0 = siVAE-0), got {config['gamma']}")
    if not 0 < float(config["train_fraction"]) <= 1:
        raise InputError("sivae.train_fraction", f"expected a share in (0, 1], got {config['train_fraction']}")
    for key in ("latent_dim", "feature_dim", "batch_size"):
        if int(config[key]) < 1:
            raise InputError(f"sivae.{key}", f"expected a positive integer, got {config[key]}")
    for key in ("cell_epochs", "feature_epochs", "joint_epochs", "gene_batch_size", "warmup_steps"):
        if int(config[key]) < 0:
            raise InputError(f"sivae.{key}", f"expected a non-negative integer, got {config[key]}")
    if not config["hidden"] or any(h < 1 for h in config["hidden"]):
        raise InputError("sivae.hidden", f"expected positive layer sizes, got {config['hidden']}")


def _registered_counts(adata: ad.AnnData, setup: dict) -> np.ndarray:
    """The registered counts as a dense float64 array, checked (finite, non-negative)."""
    if not isinstance(adata, ad.AnnData):
        raise InputError(str(adata), "siVAE needs an in-memory AnnData (it keeps the data dense)")
    layer = setup["layer"]
    if layer and layer not in adata.layers:
        raise InputError("AnnData", f"layers has no {layer!r} (layers: {', '.join(adata.layers) or 'none'})")
    matrix = adata.layers[layer] if layer else adata.X
    values = np.asarray(matrix.toarray() if sp.issparse(matrix) else matrix, dtype=np.float64)
    if not np.isfinite(values).all() or (values < 0).any():
        raise InputError("AnnData", f"{layer or 'X'} must hold finite, non-negative counts")
    return values
