"""Gene embeddings as tables (genes x dimensions): file formats and baselines.

An embedding is a DataFrame indexed by gene symbol. Two file formats: our TSV (``gene`` column, then
``dim1``..) and word2vec text (optional ``<n> <dim>`` header line, then ``symbol v1 .. vd`` per line,
whitespace separated, optionally gzipped), the format of the released ``GeneRAIN-vec.200d.txt.gz``
and of Gene2vec. Baselines for the gene-attribute benchmark: a seeded random embedding, truncated
SVD of the samples x genes expression matrix, and a co-expression embedding.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.decomposition import TruncatedSVD

from deepexpr.errors import InputError
from deepexpr.io import atomic_path, read_table, write_table

PathLike = str | os.PathLike


def write_embedding(embedding: pd.DataFrame, path: PathLike) -> None:
    """Write genes x dimensions as TSV (first column ``gene``), atomically."""
    write_table(embedding.rename_axis("gene").reset_index(), path)


def read_embedding(path: PathLike) -> pd.DataFrame:
    """Read a TSV written by :func:`write_embedding`."""
    table = read_table(path)
    if "gene" not in table.columns:
        raise InputError(path, "no 'gene' column; expected gene, dim1, dim2, ...")
    return table.set_index("gene").astype(np.float32)


def write_word2vec(embedding: pd.DataFrame, path: PathLike) -> None:
    """Write word2vec text: ``<n> <dim>`` header, then one ``symbol v1 .. vd`` line per gene.

    Gzipped (without name or timestamp in the header) when the name ends in ``.gz``.
    """
    lines = [f"{embedding.shape[0]} {embedding.shape[1]}"]
    lines += [f"{gene} " + " ".join(f"{v:.6g}" for v in row) for gene, row in zip(embedding.index, embedding.to_numpy())]
    data = ("\n".join(lines) + "\n").encode()
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz"):
            with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as stream:
                stream.write(data)
        else:
            tmp.write_bytes(data)


def read_word2vec(path: PathLike) -> pd.DataFrame:
    """Read word2vec text (header optional, ``.gz`` allowed) into genes x ``dim1..dimd``.

    Raises an InputError naming the file and line when rows disagree in length or a value is
    not a number; a gene listed twice keeps its first vector.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as handle:
        rows = [line.split() for line in handle if line.strip()]
    if not rows:
        raise InputError(path, "empty; expected word2vec text (symbol and numbers per line)")
    start = 1 if len(rows[0]) == 2 and all(part.isdigit() for part in rows[0]) else 0
    width = len(rows[start]) - 1
    if width < 1:
        raise InputError(path, f"line {start + 1}: expected a symbol followed by numbers")
    for number, row in enumerate(rows[start:], start=start + 1):
        if len(row) != width + 1:
            raise InputError(path, f"line {number}: {len(row) - 1} values, expected {width} like line {start + 1}")
    try:
        values = np.loadtxt(io.StringIO("\n".join(" ".join(r[1:]) for r in rows[start:])), dtype=np.float32, ndmin=2)
    except ValueError as error:
        raise InputError(path, f"non-numeric value ({error})") from None
    table = pd.DataFrame(values, index=pd.Index([r[0] for r in rows[start:]], name="gene"),
                         columns=[f"dim{k + 1}" for k in range(width)])  # fmt: skip
    return table[~table.index.duplicated()]


def random_embedding(genes: Sequence[str], dim: int, seed: int = 0) -> pd.DataFrame:
    """The null baseline: i.i.d. standard normal vectors, seeded."""
    values = np.random.default_rng(seed).standard_normal((len(genes), dim)).astype(np.float32)
    return pd.DataFrame(values, index=pd.Index(list(genes), name="gene"), columns=[f"dim{k + 1}" for k in range(dim)])


def svd_embedding(matrix: np.ndarray, genes: Sequence[str], dim: int, seed: int = 0) -> pd.DataFrame:
    """Truncated SVD of the (samples x genes) expression matrix: gene vectors = V S.

    Columns are centred first so the first component is not just the gene means.
    """
    centred = matrix - matrix.mean(axis=0, keepdims=True)
    dim = min(dim, min(centred.shape) - 1)
    svd = TruncatedSVD(n_components=dim, random_state=seed).fit(centred)
    vectors = (svd.components_.T * svd.singular_values_).astype(np.float32)
    return pd.DataFrame(vectors, index=pd.Index(list(genes), name="gene"), columns=[f"dim{k + 1}" for k in range(dim)])


def coexpression_embedding(matrix: np.ndarray, genes: Sequence[str], dim: int) -> pd.DataFrame:
    """Co-expression baseline: the top ``dim`` eigenvectors (scaled by eigenvalue) of the gene x gene
    Pearson correlation matrix of the (samples x genes) expression matrix.

    Computed from the SVD of the standardised samples x genes matrix (correlation = Z'Z / n, so its
    eigenvectors are Z's right singular vectors), which never forms the genes x genes matrix:
    tens of thousands of genes fit in memory. Constant genes get zero correlation with everything.
    """
    centred = matrix - matrix.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(centred, axis=0)
    standardised = centred / np.where(norms > 0, norms, 1.0)
    _, singular, right = np.linalg.svd(standardised, full_matrices=False)
    dim = min(dim, len(singular))
    embedding = (right[:dim].T * singular[:dim] ** 2).astype(np.float32)
    return pd.DataFrame(embedding, index=pd.Index(list(genes), name="gene"), columns=[f"dim{k + 1}" for k in range(dim)])
