"""One table per gene-side method of the siVAE study: each gene's hub score and its top-k neighbours.

Every method (siVAE, LDVAE, attribution loadings, PCA, a gene network) writes the same TSV:
``gene``, ``hub_score`` (higher = more hub-like) and ``neighbours`` (the k nearest genes, nearest
first, comma-separated), so the evaluation rules read all of them alike.
"""

from __future__ import annotations

import os

import pandas as pd

from deepexpr.errors import InputError
from deepexpr.io import read_table, write_table

GENE_TABLE_COLUMNS = ["gene", "hub_score", "neighbours"]


def write_gene_table(hub_scores: pd.Series, neighbours: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write hub scores (gene -> score) and a neighbourhood table (genes x k names) as one TSV."""
    genes = neighbours.index
    if not genes.equals(hub_scores.index):
        raise InputError("hub_scores", "hub scores and neighbourhoods must list the same genes in the same order")
    table = pd.DataFrame(
        {
            "gene": genes.astype(str),
            "hub_score": hub_scores.to_numpy(),
            "neighbours": [",".join(map(str, row)) for row in neighbours.to_numpy()],
        }
    )
    write_table(table, path)


def read_gene_table(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.Series]:
    """(neighbourhood table genes x k, hub scores) of a table written by :func:`write_gene_table`."""
    table = read_table(path)
    missing = set(GENE_TABLE_COLUMNS) - set(table.columns)
    if missing:
        raise InputError(str(path), f"not a gene table: missing columns {sorted(missing)}")
    genes = pd.Index(table["gene"].astype(str), name=None)
    names = [row.split(",") for row in table["neighbours"]]
    neighbours = pd.DataFrame(names, index=genes, columns=range(1, len(names[0]) + 1))
    hubs = pd.Series(table["hub_score"].astype(float).to_numpy(), index=genes, name="hub_score")
    return neighbours, hubs
