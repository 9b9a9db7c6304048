"""From raw files to the prepared bulk AnnData: the first rule that reads a dataset.

All data errors (bad counts, a sample sheet that does not match the matrix, a contrast
naming an unknown level) surface here, before any model or test runs.
"""

from __future__ import annotations

import hashlib
import json

import anndata as ad

from deepexpr import __version__
from deepexpr.data.bulk.read import (
    build_bulk_adata,
    match_samples,
    read_gene_info,
    read_genewise_counts,
    read_sample_sheet,
    validate_contrast,
)

# The simulator writes its matrix with this gene id column (see deepexpr.data.bulk.simulate.write_simulation).
SIMULATED_GENE_ID_COLUMN = "gene_id"


def config_hash(spec: dict) -> str:
    """Short stable hash of a dataset's configuration, stored as provenance."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare_bulk(
    dataset: str,
    spec: dict,
    counts_path: str,
    sample_sheet_path: str,
    gene_info_path: str | None = None,
    seed: int | None = None,
) -> ad.AnnData:
    """Read, validate and assemble one bulk dataset as described by its config ``spec``."""
    simulated = "simulate" in spec
    gene_id_column = SIMULATED_GENE_ID_COLUMN if simulated else spec["gene_id_column"]
    counts, lengths = read_genewise_counts(counts_path, gene_id_column=gene_id_column)
    sheet = read_sample_sheet(sample_sheet_path, design_columns=spec["design_columns"])
    counts = match_samples(counts, sheet, counts_path, sample_sheet_path)
    symbols = read_gene_info(gene_info_path) if gene_info_path else None
    adata = build_bulk_adata(
        counts,
        sheet,
        spec["design_columns"],
        gene_symbols=symbols,
        lengths=lengths,
        min_total_count=spec["min_total_count"],
        dataset=dataset,
        source=str(counts_path),
    )
    for name, contrast in spec["contrasts"].items():
        validate_contrast({**contrast, "name": name}, adata.obs, source=f"{sample_sheet_path} (config datasets.{dataset}.contrasts)")
    adata.uns["deepexpr"].update(
        {
            "config_hash": config_hash(spec),
            "seed": seed,
            "package_version": __version__,
            "simulated": simulated,
        }
    )
    return adata
