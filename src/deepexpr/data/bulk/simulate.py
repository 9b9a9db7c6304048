"""Seeded bulk RNA-seq simulator with known differential expression.

Shaped like GSE60450 (two cell types x three states, two replicates each):
per-gene base means log-normal as in bulk RNA-seq, DESeq2-style dispersion
trend ``a0 + a1 / mean`` with log-normal gene scatter, additive log2 effects
per factor level, per-sample size factors, negative binomial counts. Planted
gene modules are enriched in the up- or down-regulated genes of one factor
level; null modules are random genes.

Two presets. ``easy`` (the original simulator) plants |LFC| uniform in [1, 3] on a fraction of the
genes and leaves every other gene at exactly 0: even a plain log2 ratio of group means ranks the
DE genes almost perfectly, so it cannot separate methods. ``realistic`` draws continuous effect
sizes (exponential |LFC|, so most true effects are small), spreads the gene-wise dispersions
around their trend twice as widely, adds a block of low-count genes and makes one sample an
outlier (a fraction of its genes shifted several-fold), the things that make real bulk DE hard.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from deepexpr.errors import InputError
from deepexpr.io import atomic_path, write_table

PathLike = str | os.PathLike

DEFAULT_DESIGN = {"cell_type": ["basal", "luminal"], "status": ["virgin", "pregnant", "lactate"]}
DEFAULT_DE_FRACTION = {"cell_type": 0.15, "status": 0.08}
PRESETS = ("easy", "realistic")


class BulkSimulation(NamedTuple):
    """Simulated data set; ``counts`` is genes x samples in the GEO layout."""

    counts: pd.DataFrame  # index gene_id; "Length" then one column per sample's count_column
    samples: pd.DataFrame  # sample, count_column, one column per design factor
    truth: pd.DataFrame  # gene_id, base_mean, dispersion, lfc__<factor>__<level> (+ outlier_log2_effect__<sample>)
    gene_sets: dict[str, list[str]]  # module name -> gene ids


def _sample_sheet(design: Mapping[str, Sequence[str]], n_replicates: int) -> pd.DataFrame:
    """One row per sample: every combination of levels, replicates innermost."""
    combos = [c for c in itertools.product(*design.values()) for _ in range(n_replicates)]
    sheet = pd.DataFrame(combos, columns=list(design))
    names = [f"S{i + 1:02d}" for i in range(len(sheet))]
    sheet.insert(0, "count_column", [f"SIM-{name}" for name in names])
    sheet.insert(0, "sample", names)
    return sheet


def _dispersions(
    base_mean: np.ndarray, asymptotic: float, extra_poisson: float, scatter_sd: float, rng: np.random.Generator
) -> np.ndarray:
    """DESeq2-like trend a0 + a1 / mean times log-normal gene-wise scatter."""
    trend = asymptotic + extra_poisson / base_mean
    return trend * np.exp(rng.normal(0.0, scatter_sd, size=base_mean.size))


def _planted_effects(
    n_genes: int, fraction: float, min_abs: float, max_abs: float, rng: np.random.Generator
) -> np.ndarray:
    """log2 effects: a random ``fraction`` of genes get |LFC| in [min, max], random sign."""
    effects = np.zeros(n_genes)
    n_de = int(round(fraction * n_genes))
    chosen = rng.choice(n_genes, size=n_de, replace=False)
    effects[chosen] = rng.uniform(min_abs, max_abs, size=n_de) * rng.choice([-1.0, 1.0], size=n_de)
    return effects


def _continuous_effects(
    n_genes: int, fraction: float, mean_abs: float, max_abs: float, rng: np.random.Generator
) -> np.ndarray:
    """log2 effects: a random ``fraction`` of genes get |LFC| exponential with mean ``mean_abs``
    (capped at ``max_abs``), random sign: most true effects are small, a few are large."""
    effects = np.zeros(n_genes)
    n_de = int(round(fraction * n_genes))
    chosen = rng.choice(n_genes, size=n_de, replace=False)
    magnitude = np.minimum(rng.exponential(mean_abs, size=n_de), max_abs)
    effects[chosen] = magnitude * rng.choice([-1.0, 1.0], size=n_de)
    return effects


def _gene_modules(
    gene_ids: pd.Index,
    truth: pd.DataFrame,
    design: Mapping[str, Sequence[str]],
    modules_per_direction: int,
    n_null_modules: int,
    size_range: tuple[int, int],
    purity: float,
    rng: np.random.Generator,
) -> dict[str, list[str]]:
    """Planted modules (mostly up- or down-regulated genes of one level) and null modules."""
    size_range = (min(size_range[0], gene_ids.size), min(size_range[1], gene_ids.size))
    modules: dict[str, list[str]] = {}
    for factor, levels in design.items():
        for level in levels[1:]:
            lfc = truth[f"lfc__{factor}__{level}"].to_numpy()
            for direction, pool in (("UP", np.flatnonzero(lfc > 0)), ("DOWN", np.flatnonzero(lfc < 0))):
                for k in range(1, modules_per_direction + 1):
                    # Small DE pools shrink the module rather than dilute it below ``purity``.
                    largest = max(size_range[0], min(size_range[1], int(pool.size / purity)))
                    size = int(rng.integers(size_range[0], largest + 1))
                    n_planted = min(int(round(purity * size)), pool.size)
                    planted = rng.choice(pool, size=n_planted, replace=False)
                    others = rng.choice(
                        np.setdiff1d(np.arange(gene_ids.size), planted), size=size - n_planted, replace=False
                    )
                    name = f"MODULE_{factor.upper()}_{level.upper()}_{direction}_{k}"
                    modules[name] = sorted(gene_ids[np.concatenate([planted, others])])
    for k in range(1, n_null_modules + 1):
        size = int(rng.integers(size_range[0], size_range[1] + 1))
        modules[f"MODULE_NULL_{k}"] = sorted(gene_ids[rng.choice(gene_ids.size, size=size, replace=False)])
    return modules


def simulate_bulk(
    n_genes: int = 2000,
    design: Mapping[str, Sequence[str]] | None = None,
    n_replicates: int = 2,
    de_fraction: Mapping[str, float] | None = None,
    min_abs_log2fc: float = 1.0,
    max_abs_log2fc: float = 3.0,
    base_mean_median: float = 200.0,
    base_mean_log_sd: float = 2.0,
    size_factor_log_sd: float = 0.3,
    dispersion_asymptotic: float = 0.05,
    dispersion_extra_poisson: float = 2.0,
    dispersion_scatter_sd: float = 0.5,
    modules_per_direction: int = 2,
    n_null_modules: int = 6,
    module_size_range: tuple[int, int] = (15, 150),
    module_purity: float = 0.6,
    seed: int = 0,
    preset: str = "realistic",
    mean_abs_log2fc: float = 0.8,
    realistic_dispersion_scatter_sd: float = 1.0,
    low_count_fraction: float = 0.15,
    low_count_range: tuple[float, float] = (0.5, 10.0),
    outlier_gene_fraction: float = 0.05,
    outlier_log2_sd: float = 2.0,
) -> BulkSimulation:
    """Simulate a bulk count matrix with known per-level log2 effects.

    Model: log2 mean_gj = log2 base_g + sum_f lfc_g(f, level_j(f)) + log2 s_j,
    with the first level of each factor the reference (effect 0). Each
    non-reference level independently gets ``de_fraction[factor]`` of the genes
    with |LFC| uniform in [min_abs_log2fc, max_abs_log2fc] and random sign.
    Base means are log-normal (median ``base_mean_median``, like DESeq2
    baseMeans of mouse tissue, roughly 1 to 10^5), size factors log-normal
    with geometric mean 1 (about a two-fold range over 12 samples, as in
    GSE60450), counts NB with mean-dependent dispersion.

    ``preset="easy"`` is exactly that. ``preset="realistic"`` changes four things:
    DE genes get |LFC| exponential with mean ``mean_abs_log2fc`` (capped at ``max_abs_log2fc``;
    ``min_abs_log2fc`` is not used), the dispersion scatter around the trend has log-sd
    ``realistic_dispersion_scatter_sd``, a ``low_count_fraction`` of genes get base means
    log-uniform in ``low_count_range``, and one random sample is an outlier: a
    ``outlier_gene_fraction`` of genes get a log2 shift N(0, ``outlier_log2_sd``^2) in that sample
    only (truth column ``outlier_log2_effect__<sample>``).
    """
    if preset not in PRESETS:
        raise InputError("simulate.preset", f"expected one of {list(PRESETS)}, got {preset!r}")
    realistic = preset == "realistic"
    design = {f: [str(v) for v in levels] for f, levels in (design or DEFAULT_DESIGN).items()}
    de_fraction = dict(de_fraction if de_fraction is not None else DEFAULT_DE_FRACTION)
    missing = [f for f in design if f not in de_fraction]
    if missing:
        raise InputError("simulate.de_fraction", f"no DE fraction for design factor(s) {missing}")
    if not 0 < min_abs_log2fc <= max_abs_log2fc:
        raise InputError("simulate", "expected 0 < min_abs_log2fc <= max_abs_log2fc")
    rng = np.random.default_rng(seed)

    gene_ids = pd.Index([f"g{i + 1:0{max(4, len(str(n_genes)))}d}" for i in range(n_genes)], name="gene_id")
    base_mean = base_mean_median * np.exp(rng.normal(0.0, base_mean_log_sd, size=n_genes))
    if realistic:
        low = rng.choice(n_genes, size=int(round(low_count_fraction * n_genes)), replace=False)
        base_mean[low] = np.exp(rng.uniform(*np.log(low_count_range), size=low.size))
        dispersion_scatter_sd = realistic_dispersion_scatter_sd
    dispersion = _dispersions(base_mean, dispersion_asymptotic, dispersion_extra_poisson, dispersion_scatter_sd, rng)
    truth = pd.DataFrame({"gene_id": gene_ids, "base_mean": base_mean, "dispersion": dispersion})
    for factor, levels in design.items():
        for level in levels[1:]:
            if realistic:
                effects = _continuous_effects(n_genes, de_fraction[factor], mean_abs_log2fc, max_abs_log2fc, rng)
            else:
                effects = _planted_effects(n_genes, de_fraction[factor], min_abs_log2fc, max_abs_log2fc, rng)
            truth[f"lfc__{factor}__{level}"] = effects

    samples = _sample_sheet(design, n_replicates)
    log_size = rng.normal(0.0, size_factor_log_sd, size=len(samples))
    size_factors = np.exp(log_size - log_size.mean())
    log2_mean = np.log2(base_mean)[:, None] + np.log2(size_factors)[None, :]
    for factor, levels in design.items():
        for level in levels[1:]:
            in_level = (samples[factor] == level).to_numpy()
            log2_mean[:, in_level] += truth[f"lfc__{factor}__{level}"].to_numpy()[:, None]
    if realistic:
        outlier = int(rng.integers(len(samples)))
        shifted = rng.choice(n_genes, size=int(round(outlier_gene_fraction * n_genes)), replace=False)
        shift = np.zeros(n_genes)
        shift[shifted] = rng.normal(0.0, outlier_log2_sd, size=shifted.size)
        log2_mean[:, outlier] += shift
        truth[f"outlier_log2_effect__{samples['sample'].iloc[outlier]}"] = shift
    mean = np.exp2(log2_mean)
    size = 1.0 / dispersion[:, None]
    values = rng.negative_binomial(size, size / (size + mean)).astype(np.int64)

    counts = pd.DataFrame(values, index=gene_ids, columns=samples["count_column"].to_list())
    counts.insert(0, "Length", np.round(np.exp(rng.normal(np.log(2000), 0.6, size=n_genes))).astype(np.int64))
    gene_sets = _gene_modules(
        gene_ids, truth, design, modules_per_direction, n_null_modules, module_size_range, module_purity, rng
    )
    return BulkSimulation(counts, samples, truth, gene_sets)


def write_gmt(
    gene_sets: Mapping[str, Sequence[str]], path: PathLike, descriptions: Mapping[str, str] | None = None
) -> None:
    """Write gene sets as GMT (name, description, genes; tab-separated), atomically."""
    lines = ["\t".join([name, (descriptions or {}).get(name, name), *genes]) for name, genes in gene_sets.items()]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _module_description(name: str) -> str:
    """GMT description: the name already says factor, level and direction."""
    if name.startswith("MODULE_NULL_"):
        return "null module: random genes"
    return "planted module: mostly genes DE in the direction and factor level its name gives"


def write_simulation(
    simulation: BulkSimulation,
    counts_path: PathLike,
    samples_path: PathLike,
    truth_path: PathLike,
    genesets_path: PathLike,
) -> None:
    """Write counts (.tsv.gz, GEO layout), sample sheet, truth and GMT atomically."""
    write_table(simulation.counts, counts_path, index=True)
    write_table(simulation.samples, samples_path)
    write_table(simulation.truth, truth_path)
    write_gmt(
        simulation.gene_sets,
        genesets_path,
        {name: _module_description(name) for name in simulation.gene_sets},
    )


def simulate_from_config(settings: Mapping, seed: int) -> BulkSimulation:
    """Run :func:`simulate_bulk` with a dataset's ``simulate`` block of the workflow config."""
    return simulate_bulk(
        n_genes=settings["n_genes"],
        n_replicates=settings["n_replicates"],
        de_fraction={"cell_type": settings["de_fraction_cell_type"], "status": settings["de_fraction_status"]},
        min_abs_log2fc=settings["min_abs_log2fc"],
        max_abs_log2fc=settings["max_abs_log2fc"],
        mean_abs_log2fc=settings["mean_abs_log2fc"],
        preset=settings["preset"],
        seed=seed,
    )
