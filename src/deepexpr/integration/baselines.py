"""Batch-correction baselines run side by side with GENEX (docs/models/baselines.md), in one output format.

Every method takes the prepared AnnData of the data contract (``layers["counts"]`` integer counts of
the HVGs, ``X`` log-normalised csr, obs ``batch``/``cell_type``) and returns the integration AnnData
of the contract through :func:`finish_integration`: obs/var copied, ``X`` None, ``obsm["X_emb"]``
(what scIB scores), ``layers["corrected"]`` for methods that correct the expression matrix, and
``uns["integration"]`` with the method, its output kind, fit seconds, parameters and seed.

"full" methods (a corrected log-expression matrix) are scored on PCA(50) of that matrix, unscaled,
like the original; "embed" methods on their own embedding.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import time
from collections.abc import Callable, Mapping
from importlib.metadata import version

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepexpr.errors import InputError
from deepexpr.registry import baseline_methods

logger = logging.getLogger(__name__)

#: Output kinds of uns["integration"]["output"].
OUTPUT_KINDS = ("full", "embed")

#: Components of the PCA that full outputs are scored on (fewer when the data is smaller).
N_PCS = 50
#: Harmony's outer-iteration bound by default: far above the few it needs to converge (harmonypy's own is 10).
HARMONY_MAX_ITER = 100
#: scVI settings per mode (config ``datasets.<d>.scvi``; None there = these): ``recommended`` = scvi-tools'
#: own defaults (mini-batch 128, its epoch rule); ``genexpaper`` = the GENEX notebooks' mini-batch of
#: 1,200 cells with the same epoch rule. ``max_epochs`` None = scvi-tools' rule, min(400, 400 x 20,000 / cells).
SCVI_MODE_DEFAULTS: dict[str, dict] = {
    "recommended": {"batch_size": 128, "max_epochs": None},
    "genexpaper": {"batch_size": 1200, "max_epochs": None},
}


def _dense(matrix) -> np.ndarray:
    return np.asarray(matrix.toarray() if sp.issparse(matrix) else matrix, dtype=np.float32)


def validate_prepared(prepared: ad.AnnData, source: str = "prepared.h5ad", need_counts: bool = False) -> None:
    """Check what every integration needs: log X, a batch column with ≥2 levels, counts when asked."""
    if prepared.n_obs < 3 or prepared.n_vars < 2:
        raise InputError(source, f"needs at least 3 cells and 2 genes, got {prepared.n_obs} x {prepared.n_vars}")
    if "batch" not in prepared.obs:
        raise InputError(source, "obs has no 'batch' column (the data contract's batch key)")
    if prepared.obs["batch"].isna().any():
        raise InputError(source, "obs['batch'] has missing values")
    if prepared.obs["batch"].nunique() < 2:
        raise InputError(source, "obs['batch'] has a single level; integration needs at least 2 batches")
    if prepared.X is None:
        raise InputError(source, "X (log-normalised expression) is missing")
    if need_counts and "counts" not in prepared.layers:
        raise InputError(source, "layers['counts'] (integer counts) is missing")


def pca_embedding(values: np.ndarray, seed: int, n_comps: int = N_PCS) -> np.ndarray:
    """PCA of a cells x genes matrix, centred but unscaled, as scanpy computes it for the contract."""
    import scanpy as sc

    n_comps = min(n_comps, values.shape[0] - 1, values.shape[1] - 1)
    return np.asarray(sc.pp.pca(np.asarray(values, dtype=np.float32), n_comps=n_comps, random_state=seed))


def _storable(params: Mapping) -> dict:
    """Parameters as h5ad can store them: None (unwritable in uns) becomes the string 'none',
    tuples become lists."""

    def value(v):
        if v is None:
            return "none"
        if isinstance(v, Mapping):
            return _storable(v)
        return list(v) if isinstance(v, tuple) else v

    return {k: value(v) for k, v in params.items()}


def finish_integration(
    prepared: ad.AnnData,
    method: str,
    *,
    embedding: np.ndarray | None = None,
    corrected: np.ndarray | None = None,
    seconds: float,
    params: Mapping,
    seed: int,
    output: str,
) -> ad.AnnData:
    """Assemble one run's integration AnnData (the contract's ``integration/{run}.h5ad``).

    ``output="full"`` needs ``corrected`` (cells x genes, log scale) and scores PCA(50) of it;
    ``output="embed"`` needs ``embedding`` and may also keep a ``corrected`` layer (scVI's
    normalised expression) so truth metrics can score it; only the embedding enters scIB.
    """
    if output not in OUTPUT_KINDS:
        raise ValueError(f"output must be one of {OUTPUT_KINDS}, got {output!r}")
    n_cells, n_genes = prepared.shape
    if corrected is not None:
        corrected = np.asarray(corrected, dtype=np.float32)
        if corrected.shape != (n_cells, n_genes):
            raise ValueError(f"{method}: corrected has shape {corrected.shape}, expected {(n_cells, n_genes)}")
        if not np.isfinite(corrected).all():
            raise FloatingPointError(f"{method}: corrected values hold {int((~np.isfinite(corrected)).sum())} NaN/inf")
    if output == "full":
        if corrected is None or embedding is not None:
            raise ValueError(f"{method}: a full output passes corrected values only (its embedding is their PCA)")
        embedding = pca_embedding(corrected, seed)
    elif embedding is None:
        raise ValueError(f"{method}: an embed output needs an embedding")
    embedding = np.asarray(embedding, dtype=np.float32)
    if embedding.ndim != 2 or embedding.shape[0] != n_cells:
        raise ValueError(f"{method}: embedding has shape {embedding.shape}, expected ({n_cells}, d)")
    if not np.isfinite(embedding).all():
        raise FloatingPointError(f"{method}: the embedding holds NaN/inf")

    result = ad.AnnData(obs=prepared.obs.copy(), var=prepared.var.copy())
    result.obsm["X_emb"] = embedding
    if corrected is not None:
        result.layers["corrected"] = corrected
    result.uns["integration"] = {
        "method": method,
        "output": output,
        "seconds": float(seconds),
        "params": _storable(params),
        "seed": int(seed),
    }
    logger.info(
        "%s: %s output, embedding %d x %d, fit %.1f s", method, output, embedding.shape[0], embedding.shape[1], seconds
    )
    return result


def integrate_unintegrated(prepared: ad.AnnData, seed: int = 0) -> ad.AnnData:
    """No correction: the log-normalised HVGs themselves (scored on their PCA50; PCR's reference)."""
    validate_prepared(prepared)
    started = time.perf_counter()
    corrected = _dense(prepared.X)
    return finish_integration(
        prepared,
        "unintegrated",
        corrected=corrected,
        seconds=time.perf_counter() - started,
        params={},
        seed=seed,
        output="full",
    )


def integrate_combat(prepared: ad.AnnData, seed: int = 0) -> ad.AnnData:
    """scanpy ``pp.combat`` on the dense log-normalised HVGs, key = batch, no covariates.

    ComBat is deterministic; ``seed`` only enters the PCA of the corrected matrix.
    """
    import scanpy as sc

    validate_prepared(prepared)
    data = ad.AnnData(_dense(prepared.X), obs=pd.DataFrame({"batch": prepared.obs["batch"].astype(str)}))
    started = time.perf_counter()
    with np.errstate(divide="ignore", invalid="ignore"):  # its convergence check divides by zero-variance genes
        corrected = sc.pp.combat(data, key="batch", covariates=None, inplace=False)
    seconds = time.perf_counter() - started
    return finish_integration(
        prepared,
        "combat",
        corrected=np.asarray(corrected, dtype=np.float32),
        seconds=seconds,
        params={"key": "batch", "covariates": "none", "scanpy": version("scanpy")},
        seed=seed,
        output="full",
    )


def integrate_harmony(
    prepared: ad.AnnData,
    seed: int = 0,
    n_comps: int = N_PCS,
    theta: float = 2.0,
    lamb: float | None = None,
    max_iter: int = HARMONY_MAX_ITER,
    threads: int = 1,
) -> ad.AnnData:
    """harmonypy on PCA50 of the log-normalised HVGs, batch = obs ``batch``.

    harmonypy 2.x changed the ridge penalty default: ``lamb=None`` now estimates it per cluster
    from alpha = 0.2 (R harmony 1.x used a fixed 1). The value used is recorded either way.
    ``max_iter`` bounds Harmony's outer iterations (harmonypy's own default is 10); the run
    records how many it took and why it stopped (``converged`` by harmonypy's objective test, or
    ``max_iter``).
    """
    import harmonypy

    validate_prepared(prepared)
    pcs = pca_embedding(_dense(prepared.X), seed, n_comps)
    meta = pd.DataFrame({"batch": prepared.obs["batch"].astype(str).to_numpy()})
    started = time.perf_counter()
    fit = harmonypy.run_harmony(
        pcs,
        meta,
        "batch",
        theta=theta,
        lamb=lamb,
        max_iter_harmony=int(max_iter),
        random_state=seed,
        ncores=threads,
        verbose=False,
    )
    seconds = time.perf_counter() - started
    corrected = np.asarray(fit.Z_corr)
    if corrected.shape[0] != prepared.n_obs:  # older harmonypy returned PCs x cells
        corrected = corrected.T
    # one k-means round count per outer iteration; harmonypy leaves its loop early only when its
    # convergence test passes
    iterations = len(fit.kmeans_rounds)
    stop_reason = "max_iter" if iterations >= int(max_iter) else "converged"
    logger.info("harmony: %d iterations, stopped: %s (max_iter %d)", iterations, stop_reason, int(max_iter))
    return finish_integration(
        prepared,
        "harmony",
        embedding=corrected,
        seconds=seconds,
        params={
            "n_comps": int(pcs.shape[1]),
            "theta": float(theta),
            "lamb": "estimated per cluster (alpha=0.2)" if lamb is None else float(lamb),
            "max_iter": int(max_iter),
            "iterations": int(iterations),
            "stop_reason": stop_reason,
            "harmonypy": version("harmonypy"),
        },
        seed=seed,
        output="embed",
    )


def integrate_scanorama(
    prepared: ad.AnnData,
    seed: int = 0,
    knn: int = 20,
    sigma: float = 15.0,
    alpha: float = 0.1,
    dimred: int = N_PCS,
) -> ad.AnnData:
    """Scanorama ``integrate`` on the log-normalised HVGs, one dataset per batch (embed output).

    Scanorama wants its datasets as separate matrices, so cells are grouped by batch (batches in
    sorted order, cells in their order within a batch) and the embedding is put back in the
    original cell order afterwards. Scanorama's own preprocessing (row L2 normalisation,
    randomised SVD to ``dimred``) happens inside.
    """
    import scanorama

    validate_prepared(prepared)
    values = sp.csr_matrix(prepared.X, dtype=np.float32)
    batches = prepared.obs["batch"].astype(str).to_numpy()
    levels = sorted(set(batches))  # a fixed dataset order: scanorama's result depends on it
    groups = [np.flatnonzero(batches == level) for level in levels]
    genes = list(map(str, prepared.var_names))
    dimred = min(dimred, prepared.n_vars - 1, prepared.n_obs - 1)
    started = time.perf_counter()
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):  # scanorama prints progress to stdout
        parts, _ = scanorama.integrate(
            [values[idx] for idx in groups],
            [genes] * len(groups),
            knn=knn,
            sigma=sigma,
            alpha=alpha,
            dimred=dimred,
            seed=seed,
            ds_names=levels,
            verbose=0,
        )
    seconds = time.perf_counter() - started
    for line in chatter.getvalue().splitlines():
        logger.debug("scanorama: %s", line)
    embedding = np.empty((prepared.n_obs, parts[0].shape[1]), dtype=np.float32)
    embedding[np.concatenate(groups)] = np.concatenate(parts)
    return finish_integration(
        prepared,
        "scanorama",
        embedding=embedding,
        seconds=seconds,
        params={
            "knn": knn,
            "sigma": float(sigma),
            "alpha": float(alpha),
            "dimred": int(dimred),
            "scanorama": version("scanorama"),
        },
        seed=seed,
        output="embed",
    )


def _epoch_logger():
    """A Lightning callback that reports scVI's training loss through ProgressReporter."""
    from lightning.pytorch.callbacks import Callback

    from deepexpr.models._base.training import ProgressReporter

    class EpochLogger(Callback):
        def __init__(self):
            self.reporter, self.max_epochs, self.epochs, self.loss = None, 0, 0, float("nan")

        def on_train_start(self, trainer, pl_module):
            # scvi-tools settles max_epochs (its heuristic when None) before the trainer starts.
            self.max_epochs = int(trainer.max_epochs)
            self.reporter = ProgressReporter(self.max_epochs, "scvi", every=max(1, self.max_epochs // 10), log=logger)

        def on_train_epoch_end(self, trainer, pl_module):
            self.epochs = trainer.current_epoch + 1
            metric = trainer.callback_metrics.get("elbo_train", trainer.callback_metrics.get("train_loss_epoch"))
            self.loss = float(metric) if metric is not None else float("nan")
            self.reporter.update(self.epochs, elbo=self.loss)

        def on_train_end(self, trainer, pl_module):
            self.reporter.close(self.epochs, "max_epochs", elbo=self.loss)

    return EpochLogger()


def scvi_settings(block: Mapping, mode: str) -> dict:
    """``integrate_scvi`` keyword arguments of one mode: the config block (without its workflow-only
    keys modes/seeds) with every None replaced by the mode's default."""
    if mode not in SCVI_MODE_DEFAULTS:
        raise InputError("config: scvi.modes", f"unknown scVI mode {mode!r}; expected one of {sorted(SCVI_MODE_DEFAULTS)}")
    settings = {key: value for key, value in block.items() if key not in ("modes", "seeds")}
    for key, value in SCVI_MODE_DEFAULTS[mode].items():
        if settings.get(key) is None:
            settings[key] = value
    return settings


def scvi_epoch_rule(n_cells: int) -> int:
    """scvi-tools' own number of epochs for ``n_cells`` (what ``max_epochs=None`` trains)."""
    from scvi.model._utils import get_max_epochs_heuristic

    return int(get_max_epochs_heuristic(n_cells))


def integrate_scvi(
    prepared: ad.AnnData,
    seed: int = 0,
    max_epochs: int | None = None,
    n_latent: int = 10,
    n_layers: int = 1,
    gene_likelihood: str = "nb",
    batch_size: int = 128,
    device: str = "auto",
    threads: int | None = None,
) -> ad.AnnData:
    """scVI (scvi-tools) on ``layers["counts"]``, by default at scvi-tools' own settings; embed = latent mean.

    All cells train (no validation split: nothing early-stops). ``max_epochs=None`` uses
    scvi-tools' heuristic, min(400, round(400 * 20000 / n_cells)); a smaller ``max_epochs`` is
    recorded as a cap (``epochs_capped``). The minibatch is at most the number of cells. Besides the latent (the scored embedding) the result keeps
    ``layers["corrected"]`` = log1p of the normalised expression at library size 1e4, averaged
    over all batches (``transform_batch`` = every batch level, i.e. batch-free), so the truth
    metrics can score scVI as a full method too; the run's output kind stays "embed".
    ``threads`` sets torch's CPU threads (the caller's budget, e.g. a rule's ``threads``).
    """
    import scvi
    import torch

    from deepexpr.models._base.training import resolve_device

    validate_prepared(prepared, need_counts=True)
    if threads is not None:
        torch.set_num_threads(int(threads))
    torch_device = resolve_device(device)
    batches = prepared.obs["batch"].astype(str).to_numpy()
    data = ad.AnnData(
        sp.csr_matrix(prepared.layers["counts"], dtype=np.float32),
        obs=pd.DataFrame({"batch": pd.Categorical(batches)}, index=prepared.obs_names),
        var=pd.DataFrame(index=prepared.var_names),
    )
    n_cells = data.n_obs
    batch_size = int(min(batch_size, n_cells))
    scvi.settings.seed = seed
    scvi.settings.progress_bar_style = "tqdm"
    scvi.settings.dl_num_workers = 0
    scvi.model.SCVI.setup_anndata(data, batch_key="batch")
    model = scvi.model.SCVI(data, n_layers=n_layers, n_latent=n_latent, gene_likelihood=gene_likelihood)
    callback = _epoch_logger()
    started = time.perf_counter()
    model.train(
        max_epochs=max_epochs,
        accelerator="gpu" if torch_device.type == "cuda" else "cpu",
        devices=1,
        train_size=1.0,
        batch_size=batch_size,
        # A last minibatch of one cell breaks BatchNorm; drop it in that case only.
        datasplitter_kwargs={"drop_last": n_cells % batch_size == 1},
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    seconds = time.perf_counter() - started
    latent = model.get_latent_representation()
    normalised = model.get_normalized_expression(
        library_size=1e4, transform_batch=sorted(set(batches)), return_numpy=True, batch_size=batch_size
    )
    return finish_integration(
        prepared,
        "scvi",
        embedding=latent,
        corrected=np.log1p(np.asarray(normalised, dtype=np.float32)),
        seconds=seconds,
        params={
            "n_latent": n_latent,
            "n_layers": n_layers,
            "gene_likelihood": gene_likelihood,
            "batch_size": batch_size,
            "max_epochs": callback.max_epochs,
            "epochs_trained": int(callback.epochs),
            "epoch_rule": scvi_epoch_rule(n_cells),
            "epochs_capped": bool(callback.max_epochs < scvi_epoch_rule(n_cells)),
            "train_size": 1.0,
            "device": torch_device.type,
            "threads": int(torch.get_num_threads()),
            "corrected_layer": "log1p(normalized expression, library_size=1e4, mean over all batches)",
            "scvi_tools": version("scvi-tools"),
        },
        seed=seed,
        output="embed",
    )


def _integration_functions() -> dict[str, Callable[..., ad.AnnData]]:
    """``integrate_<name>`` for every method run from here: the registry's baselines, and scVI
    (its own GPU rule, this code). Checked at import, so a method added to the registry without
    its function here fails at once."""
    names = [*baseline_methods(), "scvi"]
    missing = [name for name in names if f"integrate_{name}" not in globals()]
    if missing:
        raise ImportError(f"deepexpr.registry lists methods without an integrate_<name> function here: {missing}")
    return {name: globals()[f"integrate_{name}"] for name in names}


#: Run name -> integration function (each takes the prepared AnnData, ``seed`` and its own params).
INTEGRATIONS = _integration_functions()


def integrate(method: str, prepared: ad.AnnData, seed: int = 0, params: Mapping | None = None) -> ad.AnnData:
    """Run one baseline by name with its config parameters (a bad name or parameter is an InputError)."""
    if method not in INTEGRATIONS:
        raise InputError(
            "config: integration method", f"unknown method {method!r}; expected one of {list(INTEGRATIONS)}"
        )
    function = INTEGRATIONS[method]
    params = dict(params or {})
    accepted = set(inspect.signature(function).parameters) - {"prepared", "seed"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise InputError(
            f"config: integration params of {method}", f"unknown keys {unknown}; accepted: {sorted(accepted)}"
        )
    return function(prepared, seed=seed, **params)
