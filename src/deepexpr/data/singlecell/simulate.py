"""Seeded single-cell count simulator after the Splat model of splatter (Zappia et al. 2017).

Our own numpy re-implementation (R splatter is not installable offline): gamma gene
means, log-normal library sizes, log-normal cell-type (group) DE factors with
down-regulation as 1/factor, multiplicative per-batch gene factors, BCV gamma cell
means and Poisson counts, optional logistic dropout. Design "groups" gives cell types
across technical batches (PBMC-like); design "donors" nests donors in conditions,
makes every donor its own batch and adds condition and sex effects (COVID-like).

Besides the observed counts it returns the batch-free truth of the *same* cells.
Two deliberate departures from splatter make that truth exact rather than a second
sample: cell means are normalised to the library size before the batch factors
(so a batch also changes a cell's depth, as real chemistries do) and the BCV is
computed from the batch-free means. The observed counts are then derived from the
truth counts by Poisson superposition (factor > 1: add Poisson(mean * (factor - 1)))
or binomial thinning (factor < 1), which gives exactly Poisson(mean * factor); genes
no batch touches have identical observed and truth counts, so truth metrics measure
batch removal and not resampling noise.

Two presets (``preset``): ``easy`` is the simulator as first written, one multiplicative batch
factor per gene shared by every cell type, the same cell-type proportions in every batch and
~60k UMIs per cell. That is ComBat's own model, so ComBat recovers the truth exactly. ``realistic``
(the default) breaks it the way real data do: each batch factor also varies by cell type
(gene x batch x cell type), every batch draws its own cell-type proportions (Dirichlet around
``cell_type_prob``) and one cell type is absent from the last batch, libraries hold ~2k-10k UMIs and
a logistic dropout removes counts. The realistic draws come from their own random stream, so an
``easy`` simulation is byte-identical to the simulator before presets existed.

Optional planted gene modules (``modules=``, off by default) give gene-level truth for gene
neighbourhoods and hub genes: each module has one signal per cell; its few hub genes follow
that signal at full strength and its other members at a weaker, gene-specific coupling, so a
hub is the gene most tied to every other member. Module draws use their own random stream,
so every other quantity is the same with or without modules, and without modules the output
is byte-identical to a simulator that never had them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepexpr import __version__
from deepexpr.errors import InputError
from deepexpr.io import write_h5ad
from deepexpr.models._base.training import ProgressReporter

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: Parameters and defaults; the config schema (simulate_singlecell) uses the same names (a test checks).
DEFAULTS: dict = {
    "preset": "realistic",
    "design": "groups",
    "n_genes": 2000,
    "cell_types": ["T_cell", "NK", "B_cell", "CD14_mono", "FCGR3A_mono", "DC"],
    "cell_type_prob": [0.35, 0.15, 0.15, 0.2, 0.1, 0.05],
    "de_prob": 0.1,
    "de_down_prob": 0.5,
    "de_fac_loc": 0.5,
    "de_fac_scale": 0.4,
    "batch_gene_prob": 0.3,
    "batch_fac_loc": 0.3,
    "batch_fac_scale": 0.3,
    "mean_shape": 0.6,
    "mean_rate": 0.3,
    "bcv_common": 0.1,
    "bcv_df": 60,
    # None = the preset's value (PRESETS)
    "lib_loc": None,
    "lib_scale": None,
    "dropout": None,
    "dropout_mid": None,
    "dropout_shape": None,
    "batch_cell_type_scale": None,
    "composition_concentration": None,
    "absent_cell_type": None,
    # design "groups"
    "batch_cells": [600, 800, 1000],
    "batches": [],
    # design "donors"
    "conditions": ["healthy", "mild", "critical"],
    "donors_per_condition": 2,
    "cells_per_donor": 300,
    "condition_de_prob": 0.05,
    "condition_fac_loc": 0.5,
    "condition_fac_scale": 0.3,
    "sex_de_prob": 0.01,
    "sex_fac_loc": 1.5,
    "sex_fac_scale": 0.5,
}

#: Values of the preset-dependent parameters (None in DEFAULTS). "easy" = the simulator before presets.
PRESETS: dict[str, dict] = {
    "easy": {
        "lib_loc": 11,
        "lib_scale": 0.2,
        "dropout": False,
        "dropout_mid": 0,
        "dropout_shape": -1,
        "batch_cell_type_scale": 0.0,
        "composition_concentration": 0.0,
        "absent_cell_type": "",
    },
    "realistic": {
        # exp(8.5) ~ 4,900 UMIs; 95 % of cells between ~2,400 and ~9,800 before the batch factors
        "lib_loc": 8.5,
        "lib_scale": 0.35,
        "dropout": True,
        # drop probability 1 / (1 + e * mean): about half the counts of a gene with mean 0.37
        "dropout_mid": -1,
        "dropout_shape": -1,
        # sd (log scale) of a batch factor's cell-type deviation: the same gene moves differently per cell type
        "batch_cell_type_scale": 0.5,
        # Dirichlet concentration of each batch's cell-type proportions around cell_type_prob
        "composition_concentration": 20.0,
        # "second" = the second of cell_types (NK by default) is absent from the last batch
        "absent_cell_type": "second",
    },
}

#: Planted gene modules (``simulate_singlecell(..., modules=...)``); n_modules 0 = none.
MODULE_DEFAULTS: dict = {
    "n_modules": 0,
    "module_size": 20,
    "hubs_per_module": 2,
    # sd of the module signal's log-fold effect on a hub gene
    "module_sd": 0.8,
    # members follow the signal at a coupling drawn uniformly from [member_coupling, 1]
    "member_coupling": 0.3,
}

SEXES = ("female", "male")  # the sex factors act on "male" cells; "female" is the reference
# Dense work arrays of one chunk stay near this many entries (about 32 MB per float64 array).
CHUNK_ENTRIES = 4_000_000


def resolve_params(params: Mapping | None) -> dict:
    """Defaults overlaid with ``params``, validated; raises InputError naming the bad key."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise InputError(f"simulate.{unknown[0]}", f"unknown simulation parameter(s) {unknown}; known: {sorted(DEFAULTS)}")
    preset = params.get("preset", DEFAULTS["preset"])
    if preset not in PRESETS:
        raise InputError("simulate.preset", f"expected one of {sorted(PRESETS)}, got {preset!r}")
    p = {**DEFAULTS, **params}
    for key, value in PRESETS[preset].items():
        if p[key] is None:
            p[key] = value
    if p["absent_cell_type"] == "second":
        p["absent_cell_type"] = p["cell_types"][1] if len(p["cell_types"]) > 1 else ""

    def fail(key: str, problem: str):
        raise InputError(f"simulate.{key}", problem)

    if p["design"] not in ("groups", "donors"):
        fail("design", f"expected 'groups' or 'donors', got {p['design']!r}")
    if int(p["n_genes"]) < 2:
        fail("n_genes", f"expected at least 2 genes, got {p['n_genes']}")
    if not p["cell_types"]:
        fail("cell_types", "expected at least one cell type")
    if len(set(p["cell_types"])) != len(p["cell_types"]):
        fail("cell_types", f"names must be unique, got {p['cell_types']}")
    prob = np.asarray(p["cell_type_prob"], dtype=float)
    if prob.size != len(p["cell_types"]):
        fail("cell_type_prob", f"{prob.size} probabilities for {len(p['cell_types'])} cell_types")
    if (prob < 0).any() or abs(prob.sum() - 1.0) > 1e-6:
        fail("cell_type_prob", f"expected non-negative probabilities summing to 1, got {list(prob)} (sum {prob.sum():.6g})")
    for key in ("de_prob", "de_down_prob", "batch_gene_prob", "condition_de_prob", "sex_de_prob"):
        if not 0.0 <= float(p[key]) <= 1.0:
            fail(key, f"expected a probability in [0, 1], got {p[key]}")
    for key in ("mean_shape", "mean_rate", "bcv_df"):
        if float(p[key]) <= 0:
            fail(key, f"expected a positive number, got {p[key]}")
    for key in (
        "de_fac_scale",
        "batch_fac_scale",
        "lib_scale",
        "bcv_common",
        "condition_fac_scale",
        "sex_fac_scale",
        "batch_cell_type_scale",
        "composition_concentration",
    ):
        if float(p[key]) < 0:
            fail(key, f"expected a non-negative number, got {p[key]}")
    if p["absent_cell_type"] and p["absent_cell_type"] not in p["cell_types"]:
        fail("absent_cell_type", f"expected one of cell_types {p['cell_types']}, 'second' or '', got {p['absent_cell_type']!r}")
    if p["absent_cell_type"] and len(p["cell_types"]) < 2:
        fail("absent_cell_type", "a batch without one cell type needs at least 2 cell_types")
    if p["design"] == "groups":
        if not p["batch_cells"] or any(int(n) < 1 for n in p["batch_cells"]):
            fail("batch_cells", f"expected a non-empty list of positive cell counts, got {p['batch_cells']}")
        if p["batches"] and len(p["batches"]) != len(p["batch_cells"]):
            fail("batches", f"{len(p['batches'])} names for {len(p['batch_cells'])} batch_cells")
        if p["batches"] and len(set(p["batches"])) != len(p["batches"]):
            fail("batches", f"names must be unique, got {p['batches']}")
    else:
        if len(p["conditions"]) < 2 or len(set(p["conditions"])) != len(p["conditions"]):
            fail("conditions", f"expected at least 2 unique condition names, got {p['conditions']}")
        for key in ("donors_per_condition", "cells_per_donor"):
            if int(p[key]) < 1:
                fail(key, f"expected a positive integer, got {p[key]}")
    return p


def _lognormal_factors(
    n_genes: int, select_prob: float, down_prob: float, loc: float, scale: float, rng: np.random.Generator
) -> np.ndarray:
    """Splatter's getLNormFactors: selected genes get a log-normal factor, down-regulated ones its inverse."""
    selected = rng.random(n_genes) < select_prob
    factors = np.ones(n_genes)
    drawn = rng.lognormal(loc, scale, size=int(selected.sum()))
    down = rng.random(drawn.size) < down_prob
    drawn[down] = 1.0 / drawn[down]
    factors[selected] = drawn
    return factors


def _names(prefix: str, n: int) -> list[str]:
    width = len(str(n))
    return [f"{prefix}{i + 1:0{width}d}" for i in range(n)]


def _donor_sexes(n_conditions: int, per_condition: int, rng: np.random.Generator) -> np.ndarray:
    """Sex index per donor (condition-major order), balanced within each condition."""
    sexes = []
    for _ in range(n_conditions):
        start = int(rng.integers(2))  # which sex gets the extra donor when the count is odd
        sexes.append(rng.permutation([(start + i) % 2 for i in range(per_condition)]))
    return np.concatenate(sexes)


def _realistic_stream(seed: int) -> np.random.Generator:
    """The realistic preset's own random stream: the Splat draws stay the same as in ``easy``."""
    return np.random.default_rng([int(seed), 0xBA7C])


def batch_composition(p: dict, n_batches: int, seed: int) -> np.ndarray | None:
    """Cell-type proportions per batch (batches x cell types), or None when every batch shares
    ``cell_type_prob`` (the easy preset). The absent cell type gets 0 in the last batch (when
    there are at least two)."""
    concentration = float(p["composition_concentration"])
    absent = p["absent_cell_type"] if n_batches > 1 else ""  # a single batch keeps every cell type
    if concentration == 0 and not absent:
        return None
    prob = np.asarray(p["cell_type_prob"], dtype=float)
    if concentration > 0:
        rng = _realistic_stream(seed)
        drawn = np.vstack([rng.dirichlet(np.maximum(prob * concentration, 1e-3)) for _ in range(n_batches)])
        composition = np.where(prob > 0, drawn, 0.0)  # a type with probability 0 stays absent everywhere
    else:
        composition = np.tile(prob, (n_batches, 1))
    if absent:
        composition[-1, list(p["cell_types"]).index(absent)] = 0.0
    return composition / composition.sum(axis=1, keepdims=True)


def _cell_design(p: dict, rng: np.random.Generator, seed: int) -> tuple[pd.DataFrame, dict]:
    """obs of every cell plus the integer codes used to build its means."""
    if p["design"] == "groups":
        batches = list(p["batches"]) or _names("batch", len(p["batch_cells"]))
        batch_idx = np.repeat(np.arange(len(batches)), [int(n) for n in p["batch_cells"]])
        codes = {"batch": batch_idx}
        obs = {"batch": pd.Categorical.from_codes(batch_idx, categories=batches)}
    else:
        conditions, per = list(p["conditions"]), int(p["donors_per_condition"])
        donors = _names("donor", len(conditions) * per)
        donor_condition = np.repeat(np.arange(len(conditions)), per)
        donor_sex = _donor_sexes(len(conditions), per, rng)
        batch_idx = np.repeat(np.arange(len(donors)), int(p["cells_per_donor"]))
        codes = {"batch": batch_idx, "condition": donor_condition[batch_idx], "sex": donor_sex[batch_idx]}
        obs = {
            "batch": pd.Categorical.from_codes(batch_idx, categories=donors),
            "condition": pd.Categorical.from_codes(codes["condition"], categories=conditions),
            "donor": pd.Categorical.from_codes(batch_idx, categories=donors),
            "sex": pd.Categorical.from_codes(codes["sex"], categories=list(SEXES)),
        }
    composition = batch_composition(p, int(batch_idx.max()) + 1, seed)
    if composition is None:
        type_idx = rng.choice(len(p["cell_types"]), size=batch_idx.size, p=np.asarray(p["cell_type_prob"], dtype=float))
    else:
        type_idx = np.empty(batch_idx.size, dtype=int)
        for batch, prob in enumerate(composition):
            cells = batch_idx == batch
            type_idx[cells] = rng.choice(len(p["cell_types"]), size=int(cells.sum()), p=prob)
    codes["cell_type"] = type_idx
    obs["cell_type"] = pd.Categorical.from_codes(type_idx, categories=list(p["cell_types"]))
    frame = pd.DataFrame(obs, index=_names("Cell", batch_idx.size))
    for column in frame.columns:
        frame[column] = frame[column].cat.remove_unused_categories()
    return frame, codes


def resolve_modules(modules: Mapping | None) -> dict:
    """MODULE_DEFAULTS overlaid with ``modules``, validated; raises InputError naming the bad key."""
    modules = dict(modules or {})
    unknown = sorted(set(modules) - set(MODULE_DEFAULTS))
    if unknown:
        raise InputError(
            f"simulate.modules.{unknown[0]}", f"unknown module parameter(s) {unknown}; known: {sorted(MODULE_DEFAULTS)}"
        )
    m = {**MODULE_DEFAULTS, **modules}
    for key in ("n_modules", "module_size", "hubs_per_module"):
        if int(m[key]) < 0 or int(m[key]) != m[key]:
            raise InputError(f"simulate.modules.{key}", f"expected a non-negative integer, got {m[key]}")
    if m["n_modules"] and not 1 <= m["hubs_per_module"] < m["module_size"]:
        raise InputError(
            "simulate.modules.hubs_per_module",
            f"expected between 1 and module_size - 1 ({m['module_size'] - 1}), got {m['hubs_per_module']}",
        )
    if float(m["module_sd"]) < 0:
        raise InputError("simulate.modules.module_sd", f"expected a non-negative number, got {m['module_sd']}")
    if not 0.0 <= float(m["member_coupling"]) <= 1.0:
        raise InputError("simulate.modules.member_coupling", f"expected a number in [0, 1], got {m['member_coupling']}")
    return m


def _plant_modules(
    m: dict, gene_mean: np.ndarray, n_cells: int, seed: int
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Module signal per cell (cells x modules), log-fold loading per gene (modules x genes) and the truth table.

    Members are drawn among genes with above-median base mean so the planted effect is not
    lost in Poisson noise of nearly silent genes.
    """
    rng = np.random.default_rng([int(seed), 0x5EED])  # own stream: the Splat draws stay as they were
    n_genes, n_modules, size = gene_mean.size, int(m["n_modules"]), int(m["module_size"])
    eligible = np.flatnonzero(gene_mean >= np.median(gene_mean))
    if n_modules * size > eligible.size:
        raise InputError(
            "simulate.modules.n_modules",
            f"{n_modules} modules x {size} genes exceed the {eligible.size} genes with above-median mean",
        )
    members = rng.permutation(eligible)[: n_modules * size].reshape(n_modules, size)
    signal = rng.standard_normal((n_cells, n_modules))
    loadings = np.zeros((n_modules, n_genes))
    module = np.full(n_genes, -1)
    hub = np.zeros(n_genes, dtype=bool)
    for k, genes in enumerate(members):
        coupling = rng.uniform(float(m["member_coupling"]), 1.0, size=size)
        coupling[: int(m["hubs_per_module"])] = 1.0  # the first genes of the permutation are the hubs
        loadings[k, genes] = float(m["module_sd"]) * coupling
        module[genes] = k
        hub[genes[: int(m["hubs_per_module"])]] = True
    truth = pd.DataFrame({"module": module, "hub_gene": hub})
    return signal, loadings, truth


def simulate_singlecell(
    params: Mapping | None, seed: int, modules: Mapping | None = None
) -> tuple[ad.AnnData, ad.AnnData]:
    """Simulate ``(raw, truth)`` AnnData of the same cells (data contract of raw.h5ad / truth.h5ad).

    ``modules`` (keys of :data:`MODULE_DEFAULTS`) plants gene modules with hub genes: the truth
    then also has ``var["module"]`` (-1 = none), ``var["hub_gene"]`` and
    ``obsm["module_signal"]``. None or ``n_modules`` 0 changes nothing.
    """
    p = resolve_params(params)
    m = resolve_modules(modules)
    rng = np.random.default_rng(seed)
    n_genes = int(p["n_genes"])
    genes = _names("Gene", n_genes)

    gene_mean = rng.gamma(float(p["mean_shape"]), 1.0 / float(p["mean_rate"]), size=n_genes)
    bcv_chisq = rng.chisquare(float(p["bcv_df"]), size=n_genes)  # one draw per gene, as splatter recycles it
    de_factors = np.vstack(
        [
            _lognormal_factors(n_genes, p["de_prob"], p["de_down_prob"], p["de_fac_loc"], p["de_fac_scale"], rng)
            for _ in p["cell_types"]
        ]
    )
    obs, codes = _cell_design(p, rng, seed)
    batches = list(obs["batch"].cat.categories)
    batch_affected = rng.random(n_genes) < float(p["batch_gene_prob"])
    batch_factors = np.vstack(
        [_lognormal_factors(n_genes, 1.0, 0.5, p["batch_fac_loc"], p["batch_fac_scale"], rng) for _ in batches]
    )
    batch_factors[:, ~batch_affected] = 1.0
    # batches x cell types x genes; in easy every cell type shares its batch's factor
    batch_type_factors = np.repeat(batch_factors[:, None, :], len(p["cell_types"]), axis=1)
    if float(p["batch_cell_type_scale"]) > 0:
        deviation = _realistic_stream(seed).normal(0.0, float(p["batch_cell_type_scale"]), batch_type_factors.shape)
        batch_type_factors[:, :, batch_affected] *= np.exp(deviation[:, :, batch_affected])

    # Biological factor of a cell = product over covariates of its level's gene factors.
    biology = [(codes["cell_type"], de_factors)]
    var = pd.DataFrame(index=pd.Index(genes))
    var["base_mean"] = gene_mean
    var["de_gene"] = (de_factors != 1.0).any(axis=0)
    var["batch_affected"] = batch_affected
    for name, row in zip(batches, batch_factors):
        var[f"batch_factor_{name}"] = row
    if float(p["batch_cell_type_scale"]) > 0:
        for b, batch in enumerate(batches):
            for t, cell_type in enumerate(p["cell_types"]):
                var[f"batch_factor_{batch}_{cell_type}"] = batch_type_factors[b, t]
    for name, row in zip(p["cell_types"], de_factors):
        var[f"de_factor_{name}"] = row
    if p["design"] == "donors":
        conditions = list(p["conditions"])
        steps = np.arange(len(conditions)) / (len(conditions) - 1)
        full = _lognormal_factors(
            n_genes, p["condition_de_prob"], p["de_down_prob"], p["condition_fac_loc"], p["condition_fac_scale"], rng
        )
        condition_factors = full[None, :] ** steps[:, None]  # reference level: factor 1
        sex_factors = np.vstack(
            [np.ones(n_genes), _lognormal_factors(n_genes, p["sex_de_prob"], 0.5, p["sex_fac_loc"], p["sex_fac_scale"], rng)]
        )
        biology += [(codes["condition"], condition_factors), (codes["sex"], sex_factors)]
        var["condition_affected"] = full != 1.0
        var["sex_affected"] = sex_factors[1] != 1.0
        for name, row in zip(conditions, condition_factors):
            var[f"condition_factor_{name}"] = row
        for name, row in zip(SEXES, sex_factors):
            var[f"sex_factor_{name}"] = row

    lib_size = rng.lognormal(float(p["lib_loc"]), float(p["lib_scale"]), size=len(obs))
    planted = _plant_modules(m, gene_mean, len(obs), seed) if m["n_modules"] else None
    observed, truth, true_means = _simulate_counts(
        p,
        rng,
        gene_mean,
        bcv_chisq,
        biology,
        codes["batch"],
        codes["cell_type"],
        batch_type_factors,
        lib_size,
        None if planted is None else planted[:2],
    )

    provenance = {
        "dataset": "",
        "source": "deepexpr.data.singlecell.simulate (Splat-like model)",
        "package_version": __version__,
        "seed": int(seed),
        "simulated": True,
        "simulate": {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in p.items()},
    }
    raw = ad.AnnData(X=observed, obs=obs.copy(), var=pd.DataFrame(index=pd.Index(genes)))
    raw.layers["counts"] = raw.X
    raw.uns["deepexpr"] = dict(provenance)
    truth_adata = ad.AnnData(X=truth, obs=obs.copy(), var=var)
    truth_adata.layers["true_means"] = true_means
    truth_adata.uns["deepexpr"] = dict(provenance)
    if planted is not None:
        # Recorded only when planted, so runs without modules keep their exact provenance.
        for adata in (raw, truth_adata):
            adata.uns["deepexpr"]["simulate_modules"] = dict(m)
        truth_adata.var["module"] = planted[2]["module"].to_numpy()
        truth_adata.var["hub_gene"] = planted[2]["hub_gene"].to_numpy()
        truth_adata.obsm["module_signal"] = planted[0].astype(np.float32)
    return raw, truth_adata


def _simulate_counts(
    p: dict,
    rng: np.random.Generator,
    gene_mean: np.ndarray,
    bcv_chisq: np.ndarray,
    biology: list[tuple[np.ndarray, np.ndarray]],
    batch_idx: np.ndarray,
    type_idx: np.ndarray,
    batch_factors: np.ndarray,
    lib_size: np.ndarray,
    modules: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Observed counts, batch-free counts (both csr float32) and batch-free cell means (dense float32).

    ``batch_factors`` is batches x cell types x genes: a cell's factor depends on both.

    ``modules`` = (signal cells x modules, loadings modules x genes): a biological log-fold
    effect applied with the cell-type factors; it draws nothing from ``rng``.
    """
    n_cells, n_genes = lib_size.size, gene_mean.size
    affected = np.flatnonzero((batch_factors != 1.0).any(axis=(0, 1)))
    chunk = max(1, CHUNK_ENTRIES // n_genes)
    starts = range(0, n_cells, chunk)
    progress = ProgressReporter(len(starts), "simulate cell chunks", every=max(1, len(starts) // 10), log=logger)
    observed_parts, truth_parts = [], []
    true_means = np.empty((n_cells, n_genes), dtype=np.float32)
    bcv_scale = np.sqrt(float(p["bcv_df"]) / bcv_chisq)
    for number, start in enumerate(starts, start=1):
        cells = slice(start, min(start + chunk, n_cells))
        base = np.broadcast_to(gene_mean, (cells.stop - start, n_genes)).copy()
        for idx, factors in biology:
            base *= factors[idx[cells]]
        if modules is not None:
            base *= np.exp(modules[0][cells] @ modules[1])
        base *= (lib_size[cells] / base.sum(axis=1))[:, None]
        bcv = (float(p["bcv_common"]) + 1.0 / np.sqrt(np.maximum(base, 1e-12))) * bcv_scale
        shape = 1.0 / bcv**2
        means = base * rng.standard_gamma(shape) / shape  # Gamma(shape, mean = base), as splatter's BCV step
        counts = rng.poisson(means)

        factor = batch_factors[batch_idx[cells], type_idx[cells]][:, affected]
        observed = counts.copy()
        observed[:, affected] = rng.binomial(counts[:, affected], np.minimum(factor, 1.0)) + rng.poisson(
            means[:, affected] * np.maximum(factor - 1.0, 0.0)
        )
        if p["dropout"]:
            # Shared uniforms: a gene whose mean the batch leaves alone drops out in both or neither.
            uniform = rng.random(means.shape)
            observed_means = means.copy()
            observed_means[:, affected] *= factor
            counts[uniform < _dropout_prob(means, p)] = 0
            observed[uniform < _dropout_prob(observed_means, p)] = 0
        true_means[cells] = means
        truth_parts.append(sp.csr_matrix(counts.astype(np.float32)))
        observed_parts.append(sp.csr_matrix(observed.astype(np.float32)))
        progress.update(number, cells=cells.stop)
    observed = sp.vstack(observed_parts, format="csr")
    observed_parts.clear()  # free the chunks before stacking the second matrix (peak memory)
    return observed, sp.vstack(truth_parts, format="csr"), true_means


def _dropout_prob(means: np.ndarray, p: dict) -> np.ndarray:
    """Splatter's logistic dropout probability of the log cell means."""
    with np.errstate(divide="ignore", over="ignore"):
        return 1.0 / (1.0 + np.exp(-float(p["dropout_shape"]) * (np.log(means) - float(p["dropout_mid"]))))


def write_simulation(raw: ad.AnnData, truth: ad.AnnData, raw_path: PathLike, truth_path: PathLike) -> None:
    """Write both files atomically (the truth first, so a raw file never exists without its truth)."""
    write_h5ad(truth, truth_path)
    write_h5ad(raw, raw_path)
