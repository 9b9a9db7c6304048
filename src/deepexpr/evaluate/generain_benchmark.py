"""The GeneRAIN study's benchmark run: attributes from the dataset's sources, baselines on the binned
training matrix, every model against every baseline, and nearest-neighbour tables.

Used by the workflow's ``generain_attributes`` rule; the scoring itself is
:mod:`deepexpr.evaluate.gene_attributes`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from deepexpr.data.archs4 import BinnedDataset
from deepexpr.data.archs4.simulate import module_gene_sets
from deepexpr.enrich import read_gmt
from deepexpr.evaluate.gene_attributes import compare_embeddings, read_gene_list
from deepexpr.genes import coexpression_embedding, random_embedding, svd_embedding, write_embedding
from deepexpr.io import read_table

PathLike = str | os.PathLike
BASELINES = ("random", "svd", "coexpression")


def collect_gene_sets(
    simulated: PathLike | None = None,
    gmts: Mapping[str, PathLike] | None = None,
    gene_lists: Mapping[str, tuple[PathLike, str | None]] | None = None,
) -> dict[str, list[str]]:
    """Every attribute as ``{name: genes}``: the planted modules of a simulated attribute table, each
    GMT set as ``collection:term``, and each gene list (``{name: (path, column)}``) under its name."""
    gene_sets: dict[str, list[str]] = {}
    if simulated is not None:
        gene_sets.update(module_gene_sets(read_table(simulated)))
    for collection, path in (gmts or {}).items():
        gene_sets.update({f"{collection}:{term}": genes for term, genes in read_gmt(path).items()})
    for name, (path, column) in (gene_lists or {}).items():
        gene_sets[name] = read_gene_list(path, column)
    return gene_sets


def baseline_embeddings(binned: PathLike, dim: int, max_samples: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Random, SVD and co-expression embeddings of width ``dim`` from the binned training split
    (at most ``max_samples`` evenly spaced samples, so the cost is bounded at ARCHS4 scale)."""
    train = BinnedDataset(binned, split="train")
    rows = np.unique(np.linspace(0, len(train) - 1, min(len(train), max_samples)).astype(np.int64))
    matrix = np.asarray(train.bins[train.rows[rows]], dtype=np.float64)
    return {
        "random": random_embedding(train.genes, dim, seed),
        "svd": svd_embedding(matrix, train.genes, dim, seed),
        "coexpression": coexpression_embedding(matrix, train.genes, dim),
    }


def models_vs_baselines(scores: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """Each model against each baseline, for ROC-AUC and AUPRC (:func:`compare_embeddings` rows)."""
    return pd.DataFrame([
        compare_embeddings(scores, model, baseline, metric)
        for model in models for baseline in BASELINES for metric in ("roc_auc", "auprc")
    ])  # fmt: skip


def nearest_neighbours(embedding: pd.DataFrame, genes: Sequence[str], k: int = 10) -> pd.DataFrame:
    """The ``k`` nearest genes (cosine similarity) of each of ``genes``: ``gene, rank, neighbour, cosine``."""
    unit = embedding.to_numpy(dtype=np.float64)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    rows = []
    for gene in genes:
        position = embedding.index.get_loc(gene)
        similarity = unit @ unit[position]
        similarity[position] = -np.inf
        for rank, j in enumerate(np.argsort(-similarity)[:k], start=1):
            rows.append((gene, rank, embedding.index[j], float(similarity[j])))
    return pd.DataFrame(rows, columns=["gene", "rank", "neighbour", "cosine"])


def neighbour_tables(
    embeddings: Mapping[str, pd.DataFrame],
    gene_sets: Mapping[str, Sequence[str]],
    scored: Sequence[str],
    genes: Sequence[str] = (),
    n_attributes: int = 6,
) -> pd.DataFrame:
    """Nearest neighbours of ``genes`` in every embedding (``method`` column); with no genes given,
    the first gene (alphabetically) of each of the ``n_attributes`` largest ``scored`` attributes."""
    genes = list(genes)
    if not genes:
        shared = next(iter(embeddings.values())).index
        largest = sorted(scored, key=lambda name: -len(gene_sets[name]))[:n_attributes]
        genes = [sorted(shared.intersection(gene_sets[name]))[0] for name in largest]
    tables = [
        nearest_neighbours(embedding, [g for g in genes if g in embedding.index]).assign(method=name)
        for name, embedding in embeddings.items()
    ]
    return pd.concat(tables, ignore_index=True)[["method", "gene", "rank", "neighbour", "cosine"]]


def write_baselines(baselines: Mapping[str, pd.DataFrame], directory: PathLike) -> None:
    """One ``{name}.tsv`` per baseline embedding in ``directory``."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    for name, embedding in baselines.items():
        write_embedding(embedding, Path(directory) / f"{name}.tsv")
