"""Seeded simulator writing a real ARCHS4-schema HDF5 file with planted gene co-expression modules.

Log expression of gene g in sample j:

    log mu_gj = base_g + sum_m w_gm * f_mj + s_{series(j), g}

``f_mj`` ~ N(0, 1) is module m's activity in sample j; a module gene has weight ``module_weight``
on its module, and its ``hubs_per_module`` hub genes have ``hub_weight``: hubs follow the module
most closely. ``s`` is a per-series shift of every gene (series effect). Counts are Poisson with
mean ``library_size_j * softmax(log mu)_g``, library sizes log-normal (a few samples fall below
the 1e6 QC threshold) and a ``low_fraction`` of background genes with very low ``base_g``
produce realistic zeros. A few samples get a high
single-cell probability, and a couple of genes share a symbol, so QC and duplicate handling have
something to do.

The attribute table (symbol, module, hub) is the ground truth for the gene-attribute benchmark.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from deepexpr.io import atomic_path, write_table

PathLike = str | os.PathLike


def simulate_archs4(
    path: PathLike,
    attributes_path: PathLike | None = None,
    n_samples: int = 200,
    n_genes: int = 300,
    n_series: int = 20,
    n_modules: int = 6,
    module_size: int = 30,
    hubs_per_module: int = 3,
    module_weight: float = 0.8,
    hub_weight: float = 1.4,
    series_sd: float = 0.3,
    library_log10_mean: float = 6.8,
    library_log10_sd: float = 0.3,
    n_duplicated: int = 2,
    low_fraction: float = 0.4,
    seed: int = 0,
) -> pd.DataFrame:
    """Write the HDF5 file (and the attribute table when ``attributes_path`` is given); return the table.

    Genes are ``GENE0001``...; the last ``n_duplicated`` file rows repeat earlier background
    symbols (ARCHS4 has such rows). Sample fields: ``geo_accession``, ``series_id``, ``title``,
    ``source_name_ch1``, ``singlecellprobability``.
    """
    if n_modules * module_size > n_genes - n_duplicated:
        raise ValueError("n_modules x module_size must leave room for the duplicated rows")
    rng = np.random.default_rng(seed)
    n_rows = n_genes
    symbols = np.array([f"GENE{i + 1:04d}" for i in range(n_rows)], dtype=object)
    module = np.full(n_rows, -1)
    hub = np.zeros(n_rows, dtype=bool)
    members = rng.permutation(n_rows - n_duplicated)[: n_modules * module_size].reshape(n_modules, module_size)
    weights = np.zeros((n_rows, n_modules))
    for m, genes in enumerate(members):
        module[genes] = m
        weights[genes, m] = module_weight
        weights[genes[:hubs_per_module], m] = hub_weight
        hub[genes[:hubs_per_module]] = True
    background = np.flatnonzero(module[: n_rows - n_duplicated] < 0)
    duplicate_of = rng.choice(background, size=n_duplicated, replace=False)
    symbols[n_rows - n_duplicated :] = symbols[duplicate_of]

    base = rng.normal(0.0, 1.5, size=n_rows)
    # Lowly expressed background genes (expected counts well below 1 per sample) give the zeros.
    low = rng.choice(background, size=int(low_fraction * len(background)), replace=False)
    base[low] -= rng.uniform(9.0, 12.0, size=len(low))
    series = np.sort(rng.integers(0, n_series, size=n_samples))
    series_shift = rng.normal(0.0, series_sd, size=(n_series, n_rows))
    activity = rng.normal(0.0, 1.0, size=(n_modules, n_samples))
    log_mu = base[:, None] + weights @ activity + series_shift[series].T
    proportions = np.exp(log_mu - log_mu.max(axis=0))
    proportions /= proportions.sum(axis=0)
    library = 10 ** rng.normal(library_log10_mean, library_log10_sd, size=n_samples)
    counts = rng.poisson(proportions * library).astype(np.uint32)

    singlecell = rng.uniform(0.0, 0.2, size=n_samples)
    singlecell[rng.choice(n_samples, size=max(1, n_samples // 50), replace=False)] = 0.9
    accession = np.array([f"GSM{1000000 + j}" for j in range(n_samples)], dtype=object)
    series_id = np.array([f"GSE{500 + s}" for s in series], dtype=object)

    def strings(values) -> np.ndarray:
        return np.asarray([str(v).encode() for v in values], dtype="S")

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        # Chunked by sample columns like a reader expects; compressed as ARCHS4 is.
        handle.create_dataset(
            "data/expression", data=counts, chunks=(n_rows, min(n_samples, 64)), compression="gzip"
        )
        genes = handle.create_group("meta/genes")
        genes["symbol"] = strings(symbols)
        genes["ensembl_gene_id"] = strings(f"ENSG{i:011d}" for i in range(n_rows))
        genes["biotype"] = strings(["protein_coding"] * n_rows)
        samples = handle.create_group("meta/samples")
        samples["geo_accession"] = strings(accession)
        samples["series_id"] = strings(series_id)
        samples["title"] = strings(f"sample {j}" for j in range(n_samples))
        samples["source_name_ch1"] = strings(["simulated"] * n_samples)
        samples["singlecellprobability"] = singlecell
        handle.create_dataset("meta/info/version", data=b"simulated")
    table = pd.DataFrame(
        {
            "symbol": symbols[: n_rows - n_duplicated],
            "module": [f"module{m + 1}" if m >= 0 else "none" for m in module[: n_rows - n_duplicated]],
            "hub": hub[: n_rows - n_duplicated],
        }
    )
    if attributes_path is not None:
        write_table(table, attributes_path)
    return table


def module_gene_sets(attributes: pd.DataFrame) -> dict[str, list[str]]:
    """The planted modules of an attribute table as gene sets ``{module: [symbols]}``."""
    planted = attributes[attributes["module"] != "none"]
    return {name: sorted(group["symbol"]) for name, group in planted.groupby("module")}
