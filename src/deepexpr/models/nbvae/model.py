"""NB-VAE: a negative-binomial VAE for bulk counts and generative differential expression.

Re-implements Shikhar5531/Generative-Differential-Expression-RNAseq (docs/models/nbvae.md) in two
modes. ``faithful`` reproduces the original, flaws included; ``corrected`` applies the fixes
of the §2.5 table. Each table row is a constructor switch; ``mode`` only sets the defaults:

==============  =======================  ==========================================
switch          faithful                 corrected
==============  =======================  ==========================================
dispersion      ``global`` (theta = 10)  ``gene`` (learned log theta_g); ``deseq2``
                                         plugs in given MAP dispersions (N2)
kl              ``faithful_mean``        ``elbo`` (N3)
encoder_input   ``log1p_raw``            ``log1p_normalized`` (N4)
lfc_estimator   ``single_draw_offsets``  ``posterior`` (N5)
stopping        ``fixed`` (800 epochs)   ``convergence`` (N6)
==============  =======================  ==========================================

Layout follows scvi-tools: :class:`~deepexpr.models.nbvae.module.NBVAEModule` is the torch
network, :class:`NBVAE` the user-facing model (``setup_anndata`` -> ``NBVAE(adata, mode, seed,
**settings)`` -> ``train`` -> ``get_latent`` / ``differential_expression`` -> ``save``/``load``);
the DE statistics and the pooling of seeds are in :mod:`deepexpr.de.generative`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping

import anndata as ad
import numpy as np
import pandas as pd
import torch
from torch import nn

from deepexpr.config import design_terms
from deepexpr.data.bulk.read import validate_contrast
from deepexpr.de.generative import normal_equivalent_se, replicate_standard_error, summarise_draws
from deepexpr.errors import InputError
from deepexpr.models._base import BaseModel, ConvergenceMonitor, ProgressReporter, resolve_device, seed_everything
from deepexpr.models.nbvae.module import NBVAEModule, nb_log_prob
from deepexpr.models.nbvae.settings import MODE_DEFAULTS, SWITCHES

logger = logging.getLogger(__name__)

LN2 = math.log(2.0)
HISTORY_COLUMNS = ["epoch", "loss", "reconstruction", "kl", "beta", "elbo"]
#: Generative DE statistics of the posterior estimator (:meth:`NBVAE.differential_expression`).
STATISTICS = ("replicate_error", "posterior_predictive")


class NBVAE(BaseModel):
    """User-facing NB-VAE for one bulk dataset and one seed.

    Several seeds are several instances; :func:`deepexpr.de.generative.combine_seeds` pools their
    DE draws. ``settings`` are the keys of :data:`~deepexpr.models.nbvae.settings.MODE_DEFAULTS`
    (switches, architecture, training length, ``lr``, ``tol``); None takes the ``mode``'s default.
    ``dispersion_values`` (DESeq2 MAP dispersions alpha, a Series indexed by gene id) is
    required for ``dispersion="deseq2"``: theta_g = 1 / alpha_g. ``min_mean`` keeps genes
    with raw mean count >= min_mean (the original's own filter: 1).
    """

    NAME = "nbvae"
    SWITCHES = SWITCHES
    MODE_DEFAULTS = MODE_DEFAULTS
    EXTRA_SETTINGS = ("dispersion_values",)
    SETUP_KEY = "nbvae_setup"
    HISTORY_COLUMNS = HISTORY_COLUMNS

    def __init__(
        self,
        adata: ad.AnnData,
        mode: str = "corrected",
        seed: int = 0,
        dispersion_values: pd.Series | None = None,
        **settings,
    ):
        self.config = {"mode": mode, "seed": seed, **self.resolve_settings(mode, settings)}
        settings = self.config
        self.adata = adata
        self.setup = self.registration(adata)
        counts, self.size_factors = _registered_data(adata, self.setup)
        self.gene_mask = counts.mean(axis=0) >= settings["min_mean"]
        if not self.gene_mask.any():
            raise InputError("nbvae.min_mean", f"no gene has a raw mean count >= {settings['min_mean']}")
        self.genes = adata.var_names[self.gene_mask]
        self.counts = counts[:, self.gene_mask]
        self.history = pd.DataFrame(columns=HISTORY_COLUMNS)
        self.training_info: dict = {}
        self.device = torch.device("cpu")

        log_theta = self._initial_log_theta(dispersion_values)
        self._log_theta_start = log_theta.clone()
        # Weights depend on the seed only, not on whatever ran before in this process.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.module = NBVAEModule(
                len(self.genes), settings["latent_dim"], settings["hidden"], settings["dispersion"], log_theta
            )
        if settings["fast_start"]:
            self._start_at_gene_means()

    @staticmethod
    def setup_anndata(adata: ad.AnnData, layer: str = "counts", size_factor_key: str = "size_factor") -> None:
        """Register where the raw counts and size factors live (in ``adata.uns``), after checking them."""
        setup = {"layer": layer, "size_factor_key": size_factor_key}
        _registered_data(adata, setup)
        NBVAE._store_registration(adata, setup)

    @classmethod
    def _setup_from_saved(cls, adata, setup: dict) -> None:
        if not cls.is_registered(adata):
            cls.setup_anndata(adata, **setup)

    @classmethod
    def _saved_extras(cls, state: dict) -> dict:
        # Given DESeq2 dispersions are a fixed buffer of the network: theta = 1 / alpha.
        if state["config"]["dispersion"] != "deseq2":
            return {}
        alpha = (-state["modules"]["module"]["log_theta"]).exp().double().numpy()
        return {"dispersion_values": pd.Series(alpha, index=state["genes"])}

    # --------------------------------------------------------------- base hooks
    def fingerprint_parts(self):
        yield np.asarray(self.genes, dtype=str)
        yield self.counts
        yield self.size_factors

    def _initial_log_theta(self, dispersion_values: pd.Series | None) -> torch.Tensor:
        kind = self.config["dispersion"]
        if kind == "deseq2":
            if dispersion_values is None:
                raise InputError(
                    "nbvae.dispersion", "'deseq2' needs dispersion_values (pyDESeq2 MAP dispersions per gene)"
                )
            alpha = pd.Series(dispersion_values).reindex(self.genes.astype(str))
            bad = alpha.isna() | ~(alpha > 0)
            if bad.any():
                raise InputError(
                    "nbvae.dispersion_values",
                    f"{int(bad.sum())} modelled genes lack a positive dispersion, "
                    f"e.g. {list(alpha.index[bad][:5])}",
                )
            return torch.as_tensor(-np.log(alpha.to_numpy(dtype=float)), dtype=torch.float32)
        if kind == "gene" and self.config["dispersion_init"] == "moments":
            return torch.as_tensor(np.log(self._moment_theta()), dtype=torch.float32)
        return torch.full((len(self.genes) if kind == "gene" else 1,), math.log(self.config["global_theta"]))

    def _moment_theta(self) -> np.ndarray:
        """Method-of-moments inverse dispersion of each gene's size-normalised counts across all
        samples, alpha = (var - mean) / mean^2, the NB fit of the intercept-only model that
        ``fast_start`` starts from. Group differences inflate it, so it is a start, not an
        estimate: training moves theta up as the decoder explains the groups. Genes without
        over-dispersion (or without counts) start at ``global_theta``.
        """
        normalised = self.counts / self.size_factors[:, None]
        mean, var = normalised.mean(axis=0), normalised.var(axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = (var - mean) / mean**2
        theta = np.where(np.isfinite(alpha) & (alpha > 0), 1 / alpha, self.config["global_theta"])
        return np.clip(theta, 1e-2, 1e4)

    def _start_at_gene_means(self) -> None:
        """Start from the intercept-only model: centred encoder input, decoder output = each
        gene's log mean (zero output weights, bias = log mean normalised count).

        The network then only learns how samples deviate from the gene means instead of first
        spending hundreds of epochs on the means themselves (on GSE60450 the LFCs reach their
        plateau ~3x sooner). Not in the original, so faithful mode keeps PyTorch's default init;
        ``fast_start`` also damps the encoder's first layer (:meth:`_parameter_groups`).
        """
        normalised = self.counts / self.size_factors[:, None]
        with torch.no_grad():
            self.module.input_shift.copy_(torch.as_tensor(self._encoder_input().mean(axis=0)))
            self.module.decoder[-1].weight.zero_()
            self.module.decoder[-1].bias.copy_(torch.as_tensor(np.log(normalised.mean(axis=0))))

    def _encoder_input(self) -> np.ndarray:
        if self.config["encoder_input"] == "log1p_raw":
            return np.log1p(self.counts)
        return np.log1p(self.counts / self.size_factors[:, None])

    def _tensors(self) -> dict[str, torch.Tensor]:
        def tensor(values):
            return torch.as_tensor(values, dtype=torch.float32, device=self.device)

        counts = tensor(self.counts)
        return {
            "counts": counts,
            "log_size_factor": tensor(np.log(self.size_factors))[:, None],
            "encoder_input": tensor(self._encoder_input()),
            "lgamma_counts_1": torch.lgamma(counts + 1),
        }

    # --------------------------------------------------------------- training
    def _loss_terms(
        self, data: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (reconstruction, kl, elbo) as the ``kl`` switch defines them.

        faithful_mean: reconstruction = -sum_{j,g} log p, kl = mean over samples and dims.
        elbo: reconstruction = mean_j(-sum_g log p), kl = mean_j sum_d KL_jd.
        ``elbo`` is always the per-sample ELBO averaged over samples, comparable across modes.
        """
        mean, logvar = self.module.encode(data["encoder_input"])
        log_mean = self.module.decode(NBVAEModule.sample(mean, logvar)) + data["log_size_factor"]
        log_p = nb_log_prob(data["counts"], log_mean, self.module.log_theta, data["lgamma_counts_1"])
        kl_elements = -0.5 * (1 + logvar - mean.pow(2) - logvar.exp())
        per_sample_log_p = log_p.sum(dim=1)
        per_sample_kl = kl_elements.sum(dim=1)
        elbo = (per_sample_log_p - per_sample_kl).mean()
        if self.config["kl"] == "faithful_mean":
            return -per_sample_log_p.sum(), kl_elements.mean(), elbo
        return -per_sample_log_p.mean(), per_sample_kl.mean(), elbo

    def _dispersion_penalty(self) -> torch.Tensor | float:
        """Negative log of a normal prior on each learned log theta_g around its start, sd
        ``dispersion_prior_sd`` (none when unset or theta is not learned).

        Without it a decoder that memorises a gene's few replicates sends that gene's theta to
        1e5-1e9 (no noise left to model); DESeq2 shrinks its gene-wise dispersions towards a
        trend for the same reason. A prior around the genes' common mean instead let every theta
        drift up together (docs/decisions/nbvae.md). The prior is a global term, so it is added once per data set:
        divided by the number of samples where the loss is a per-sample mean (``kl="elbo"``).
        """
        sd = self.config["dispersion_prior_sd"]
        log_theta = self.module.log_theta
        if sd is None or not isinstance(log_theta, nn.Parameter):
            return 0.0
        penalty = 0.5 * ((log_theta - self._log_theta_start.to(log_theta.device)) / sd).pow(2).sum()
        return penalty if self.config["kl"] == "faithful_mean" else penalty / self.counts.shape[0]

    def _parameter_groups(self, lr: float) -> list[dict]:
        """Adam parameter groups; with ``fast_start`` the encoder's input layer learns at lr / 10,
        and a learned gene-wise log theta at ``dispersion_lr`` when that is set.

        The encoder's input layer sums ~G inputs, so one Adam step (every weight moves ~lr) shifts
        its output by up to ~G x lr: at lr 1e-3 on GSE60450 the latent means reached 1e4 within 3
        epochs for 2 of 5 seeds. A tenth of the step keeps every seed stable.

        log theta is the opposite case: at the network's lr (1e-3) one Adam step moves it by
        ~1e-3, so in the few hundred epochs a converged run lasts theta travelled only a few tenths
        in log space from its start while the decoder absorbed the noise instead
        (docs/decisions/nbvae.md).
        """
        groups, taken = [], []
        if self.config["fast_start"]:
            taken += list(self.module.encoder.parameters())
            groups.append({"params": list(self.module.encoder.parameters()), "lr": lr / 10})
        if self.config["dispersion_lr"] is not None and isinstance(self.module.log_theta, nn.Parameter):
            taken.append(self.module.log_theta)
            groups.append({"params": [self.module.log_theta], "lr": float(self.config["dispersion_lr"])})
        rest = [p for p in self.module.parameters() if all(p is not q for q in taken)]
        return [*groups, {"params": rest}]

    def train(
        self,
        max_epochs: int | None = None,
        device: str = "auto",
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int = 100,
        window: int = 50,
        log_every: int = 100,
        progress_bar: bool | None = None,
        callback: Callable[[int, dict], None] | None = None,
    ) -> pd.DataFrame:
        """Full-batch Adam training; returns (and keeps) the per-epoch history.

        beta rises linearly over the first ``warmup_epochs``. ``stopping="fixed"`` runs exactly
        ``max_epochs``; ``"convergence"`` stops once the window-mean loss improves by less than
        ``tol`` (relative) over ``window`` epochs, checked only after the warm-up, or at
        ``max_epochs``. Every hyper-parameter comes from the constructor; ``max_epochs`` given
        here overrides the setting for this run.

        With ``checkpoint_dir``, weights, optimiser, stopping state, RNG state and history are
        saved every ``checkpoint_every`` epochs and at the end; training again with the same dir
        resumes there (on CPU with exactly the numbers of an uninterrupted run), unless the data,
        settings or ``max_epochs`` differ: then it starts over. ``callback(epoch, row)`` runs after
        every epoch (after its checkpoint).
        """
        max_epochs = int(max_epochs or self.config["max_epochs"])
        lr = float(self.config["lr"])
        tol = self.config["tol"]
        seed = self.config["seed"]
        seed_everything(seed)
        self.device = resolve_device(device)
        self.module.to(self.device).train()
        data = self._tensors()
        optimizer = torch.optim.Adam(self._parameter_groups(lr), lr=lr, fused=self.device.type == "cpu")
        warmup = int(self.config["warmup_epochs"])
        convergence = self.config["stopping"] == "convergence"
        monitor = ConvergenceMonitor(
            max_epochs, tol=tol if convergence else None, window=window, min_epochs=warmup + 2 * window
        )
        progress = ProgressReporter(
            max_epochs, f"NB-VAE[{self.config['mode']}, seed {seed}]", log_every, bar=progress_bar
        )
        rows, seconds, stop = [], 0.0, False
        checkpoint = self._checkpoint_path(checkpoint_dir)
        fingerprint = self.data_fingerprint() if checkpoint is not None else ""
        payload = self._read_checkpoint(checkpoint, fingerprint, max_epochs, self.device)
        if payload is not None:
            self.module.load_state_dict(payload["module"])
            optimizer.load_state_dict(payload["optimizer"])
            monitor.restore(payload["monitor"])
            rows, seconds, stop = list(payload["rows"]), payload["seconds"], payload["stopped"]
            logger.info("resumed from %s at epoch %d", checkpoint, len(rows))
        started = time.perf_counter()
        epoch = len(rows)
        while not stop:
            epoch = len(rows) + 1
            beta = self.config["beta"] * min(1.0, epoch / warmup) if warmup else self.config["beta"]
            reconstruction, kl, elbo = self._loss_terms(data)
            loss = reconstruction + beta * kl + self._dispersion_penalty()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            rows.append((epoch, loss.item(), reconstruction.item(), kl.item(), beta, elbo.item()))
            stop = monitor.update(rows[-1][1])
            progress.update(epoch, loss=rows[-1][1], elbo=rows[-1][5])
            if checkpoint is not None and (stop or epoch % checkpoint_every == 0):
                state = {
                    "module": self.module.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "monitor": monitor.state(),
                    "rows": rows,
                    "seconds": seconds + time.perf_counter() - started,
                    "stopped": stop,
                }
                self._write_checkpoint(checkpoint, fingerprint, max_epochs, state)
            if callback is not None:
                callback(epoch, dict(zip(HISTORY_COLUMNS, rows[-1])))
        progress.close(
            epoch, "converged" if monitor.converged else "epoch cap", loss=rows[-1][1], elbo=rows[-1][5]
        )
        self.module.eval()
        self.history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
        self.training_info = {
            "epochs": epoch,
            "converged": monitor.converged,
            "max_epochs": max_epochs,
            "lr": lr,
            "tol": tol,
            "train_seconds": seconds + time.perf_counter() - started,
            "device": str(self.device),
        }
        return self.history

    # ---------------------------------------------------------------- outputs
    @torch.no_grad()
    def get_latent(self) -> pd.DataFrame:
        """Posterior means of z, samples x (z1..zK)."""
        mean, _ = self.module.encode(self._tensors()["encoder_input"])
        columns = [f"z{k + 1}" for k in range(mean.shape[1])]
        return pd.DataFrame(mean.cpu().numpy(), index=self.adata.obs_names.copy(), columns=columns)

    def get_dispersion(self) -> pd.Series:
        """Inverse dispersion theta per modelled gene (the global value repeated when global)."""
        theta = self.module.log_theta.detach().exp().cpu().numpy().astype(float)
        return pd.Series(
            np.broadcast_to(theta, (len(self.genes),)).copy(), index=self.genes.copy(), name="theta"
        )

    def dispersion_table(self) -> pd.DataFrame:
        """Per modelled gene: theta, the NB dispersion alpha = 1 / theta, and theta at the start of
        training (``start_theta``; the method-of-moments estimate with ``dispersion_init="moments"``),
        so that what training changed can be read off."""
        theta = self.get_dispersion()
        start = np.broadcast_to(self._log_theta_start.exp().numpy().astype(float), (len(self.genes),))
        return pd.DataFrame(
            {
                "gene_id": np.asarray(self.genes, dtype=str),
                "theta": theta.to_numpy(),
                "dispersion": 1 / theta.to_numpy(),
                "start_theta": start,
            }
        )

    @torch.no_grad()
    def differential_expression(
        self,
        contrast: Mapping,
        n_samples: int = 200,
        delta: float = 0.5,
        fdr_target: float = 0.05,
        pseudocount: float = 0.5,
        seed: int | None = None,
        return_draws: bool = False,
        statistic: str = "replicate_error",
    ) -> pd.DataFrame | tuple[pd.DataFrame, np.ndarray]:
        """Generative DE for one contrast (the contract's spec); one row per modelled gene.

        ``lfc_estimator="posterior"`` (corrected). Each of ``n_samples`` draws is

            LFC^s_g = mean_test log2(mu^s_gj + c) - mean_ref log2(mu^s_gj + c) + e^s_g,

        mu^s_gj = decoder mean (no library offset) at z^s_j ~ q(z | x_j), c = ``pseudocount``
        (normalised counts; keeps genes with zeros in one group finite, as the naive LFC).
        e^s_g ~ N(0, se_g^2) is the replicate-level sampling error of that difference of group
        means (:func:`~deepexpr.de.generative.replicate_standard_error`, as a normal-equivalent se of the moderated t by
        :func:`~deepexpr.de.generative.normal_equivalent_se`): a decoder fitted to 2-6 replicates per group reproduces
        each sample, so z draws alone give almost no spread and the model's own theta grows with
        training length; the replicates' residual spread around the contrast's design, moderated
        across genes, is what measures it. The draws are the likelihood of the LFC;
        :func:`~deepexpr.de.generative.summarise_draws` adds an empirical-Bayes prior (:func:`~deepexpr.de.generative.adaptive_shrinkage`) before
        reporting posterior mean, sd, 90 % interval, P(|LFC| > delta) and calls. The default
        delta 0.5 is half the smallest effect worth calling a change (2-fold): calls then need
        evidence of a real effect, not just of a nonzero one that small biases could produce.

        ``statistic="posterior_predictive"`` (posterior estimator only) replaces the replicate
        error by the model's own noise: each draw decodes z^s_j ~ q(z | x_j) with the sample's
        library offset, draws counts y^s_gj ~ NB(mu^s_gj, theta_g) from the fitted likelihood and
        takes the same difference of group means of log2(y^s_gj / s_j + c). Everything in it comes
        from the model (encoder posterior, decoder mean, learned theta); nothing from the observed
        replicate spread, so its calibration measures whether theta is right.

        ``lfc_estimator="single_draw_offsets"`` (faithful): one sampled z per sample, decoded
        with the offsets, natural-log difference of group means, reported in log2; ``called``
        marks the top and bottom 500 genes (the original's rule), other columns are NA.

        With ``return_draws`` also returns the draws (draws x genes) for :func:`~deepexpr.de.generative.combine_seeds`.
        """
        if statistic not in STATISTICS:
            raise InputError("statistic", f"expected one of {list(STATISTICS)}, got {statistic!r}")
        if statistic == "posterior_predictive" and self.config["lfc_estimator"] != "posterior":
            raise InputError("statistic", "posterior_predictive needs lfc_estimator='posterior'")
        samples = validate_contrast(contrast, self.adata.obs, source="contrast")
        levels = samples[contrast["factor"]].astype(str).to_numpy()
        is_test, is_ref = levels == str(contrast["test"]), levels == str(contrast["reference"])
        rows = self.adata.obs_names.get_indexer(samples.index)
        data = {k: v[rows] for k, v in self._tensors().items()}
        seed = self.config["seed"] if seed is None else seed
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            mean, logvar = self.module.encode(data["encoder_input"])
            if self.config["lfc_estimator"] == "single_draw_offsets":
                log_mean = self.module.decode(NBVAEModule.sample(mean, logvar)) + data["log_size_factor"]
                draws = ((log_mean[is_test].mean(0) - log_mean[is_ref].mean(0)) / LN2)[None, :].cpu().numpy()
            elif statistic == "posterior_predictive":
                draws = self._predictive_lfc_draws(
                    mean, logvar, data["log_size_factor"], is_test, is_ref, n_samples, pseudocount
                )
            else:
                observed = np.log2(self.counts[rows] / self.size_factors[rows, None] + pseudocount)
                design = _design_matrix(samples, contrast["design"])
                se, df = replicate_standard_error(observed, design, is_test, is_ref)
                draws = self._lfc_draws(mean, logvar, is_test, is_ref, n_samples, pseudocount)
                se = normal_equivalent_se(draws.mean(axis=0), se, df)
                draws = draws + se * torch.randn(draws.shape).numpy().astype(np.float64)
        draws = draws.astype(np.float64)
        table = summarise_draws(
            draws, self.genes, self._symbols(), self.config["lfc_estimator"], delta, fdr_target
        )
        return (table, draws) if return_draws else table

    def _lfc_draws(self, mean, logvar, is_test, is_ref, n_samples, pseudocount, chunk=25) -> np.ndarray:
        """Decoded LFC per posterior draw of z (draws x genes), without replicate noise."""
        lfc = []
        for start in range(0, n_samples, chunk):
            z = NBVAEModule.sample(mean, logvar, n=min(chunk, n_samples - start))
            expression = torch.log2(self.module.decode(z).exp() + pseudocount)  # draws x samples x genes
            lfc.append(expression[:, is_test].mean(1) - expression[:, is_ref].mean(1))
        return torch.cat(lfc).cpu().numpy().astype(np.float64)

    def _predictive_lfc_draws(
        self, mean, logvar, log_size_factor, is_test, is_ref, n_samples, pseudocount, chunk=25
    ) -> np.ndarray:
        """LFC of counts drawn from the fitted NB per posterior draw of z (draws x genes)."""
        theta = self.module.log_theta.exp()
        lfc = []
        for start in range(0, n_samples, chunk):
            z = NBVAEModule.sample(mean, logvar, n=min(chunk, n_samples - start))
            log_mean = self.module.decode(z) + log_size_factor  # draws x samples x genes
            # NB as a gamma-Poisson mixture: the gamma rate has mean mu and shape theta.
            rate = torch.distributions.Gamma(theta, theta / log_mean.exp()).sample()
            counts = torch.poisson(rate)
            expression = torch.log2(counts / log_size_factor.exp() + pseudocount)
            lfc.append(expression[:, is_test].mean(1) - expression[:, is_ref].mean(1))
        return torch.cat(lfc).cpu().numpy().astype(np.float64)

    def _symbols(self) -> np.ndarray:
        var = self.adata.var
        symbols = (
            var["symbol"] if "symbol" in var.columns else pd.Series(self.adata.var_names, index=var.index)
        )
        return symbols.astype(str).to_numpy()[self.gene_mask]


# ------------------------------------------------------------------- inputs
def _registered_data(adata: ad.AnnData, setup: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """Counts (samples x genes, float64) and size factors, validated, from the registered keys."""
    layer, key = setup["layer"], setup["size_factor_key"]
    if layer not in adata.layers:
        raise InputError(f"layers[{layer!r}]", f"layer not found; layers are {list(adata.layers)}")
    counts = adata.layers[layer]
    counts = np.asarray(counts.toarray() if hasattr(counts, "toarray") else counts, dtype=np.float64)
    where = f"layers[{layer!r}]"
    if not np.isfinite(counts).all():
        raise InputError(where, "contains NaN or infinite values; expected raw integer counts")
    if (counts < 0).any():
        raise InputError(
            where, f"contains {int((counts < 0).sum())} negative values; expected raw integer counts"
        )
    if (counts != np.round(counts)).any():
        raise InputError(
            where, "contains non-integer values; expected raw integer counts (not normalised data)"
        )
    if key not in adata.obs.columns:
        raise InputError(
            f"obs[{key!r}]", f"size factors not found; obs columns are {list(adata.obs.columns)}"
        )
    size_factors = adata.obs[key].to_numpy(dtype=np.float64)
    if not (np.isfinite(size_factors) & (size_factors > 0)).all():
        raise InputError(f"obs[{key!r}]", "size factors must be finite and > 0")
    return counts, size_factors


def _design_matrix(samples: pd.DataFrame, design: str) -> np.ndarray:
    """Intercept plus treatment-coded (additive) terms of ``design`` for ``samples``."""
    terms = samples[design_terms(design)].astype(str)
    dummies = pd.get_dummies(terms, drop_first=True, dtype=float)
    return np.column_stack([np.ones(len(samples)), dummies.to_numpy()])
