"""Single-cell count readers: 10x folders and HDF5, h5ad, Tran et al. TSV, per-cell metadata.

Every reader returns a cells x genes AnnData whose ``X`` is a csr float32 matrix of
integer counts, and rejects bad input with :class:`deepexpr.errors.InputError`
naming the file and what was found. :func:`read_singlecell` joins the configured
sources into the raw.h5ad of the data contract (standard obs columns, counts layer).
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from deepexpr import __version__
from deepexpr.errors import InputError

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: obs columns of the data contract, in display order.
STANDARD_OBS = ("batch", "cell_type", "condition", "donor", "sex", "sample")
FORMATS = ("10x_mtx", "10x_h5", "h5ad", "tran_tsv")
GENE_EXPRESSION = "Gene Expression"
# Genes per block when parsing a dense genes x cells TSV (bounds the parser's memory).
TSV_GENES_PER_BLOCK = 2000


def _first(values, n: int = 5) -> list:
    """The first ``n`` values, for error messages that stay short."""
    return list(values)[:n]


def check_counts(matrix, source: PathLike, what: str = "counts") -> None:
    """Raise InputError unless every value of ``matrix`` is a finite non-negative integer."""
    values = matrix.data if sp.issparse(matrix) else np.asarray(matrix).ravel()
    if values.dtype.kind in "iub":
        bad_negative = values < 0
        if bad_negative.any():
            raise InputError(
                source, f"{what}: {int(bad_negative.sum())} negative values (e.g. {values[bad_negative][0].item()}); expected counts >= 0"
            )
        return
    finite = np.isfinite(values)
    problems = (
        (~finite, "non-finite (NaN or infinite)"),
        (finite & (values < 0), "negative"),
        (finite & (values != np.round(values)), "non-integer"),
    )
    for bad, kind in problems:
        if bad.any():
            raise InputError(
                source,
                f"{what}: {int(bad.sum())} {kind} values (e.g. {values[bad][0].item()!r}); "
                "expected raw integer counts (not normalised or log values)",
            )


def _as_counts(matrix, source: PathLike) -> sp.csr_matrix:
    """Validated csr float32 copy of a count matrix."""
    check_counts(matrix, source)
    return sp.csr_matrix(matrix, dtype=np.float32)


def _find(directory: Path, names: Sequence[str]) -> Path | None:
    for name in names:
        for candidate in (directory / name, directory / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_lines_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=False, quoting=3)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise InputError(path, f"not a readable tab-separated file ({err})") from None


def read_10x_mtx(directory: PathLike) -> ad.AnnData:
    """Read a 10x folder (or .tar.gz of one): matrix.mtx (genes x cells), features/genes.tsv, barcodes.tsv.

    var_names are the gene symbols (second features column, or the only one) made
    unique; var ``gene_id`` keeps the first column. With a feature-type column only
    "Gene Expression" features are kept.
    """
    path = Path(directory)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        with tempfile.TemporaryDirectory() as unpacked:
            with tarfile.open(path) as archive:
                archive.extractall(unpacked, filter="data")
            folders = sorted({p.parent for p in Path(unpacked).rglob("matrix.mtx*")})
            if len(folders) != 1:
                raise InputError(path, f"expected one folder with matrix.mtx(.gz) in the archive, found {len(folders)}")
            return read_10x_mtx(folders[0])
    if not path.is_dir():
        raise InputError(path, "not a 10x folder (expected a directory with matrix.mtx, features.tsv, barcodes.tsv)")
    matrix_path = _find(path, ["matrix.mtx"])
    features_path = _find(path, ["features.tsv", "genes.tsv"])
    barcodes_path = _find(path, ["barcodes.tsv"])
    missing = [n for n, p in (("matrix.mtx", matrix_path), ("features.tsv or genes.tsv", features_path), ("barcodes.tsv", barcodes_path)) if p is None]
    if missing:
        raise InputError(path, f"10x folder lacks {missing} (plain or .gz); files present: {sorted(p.name for p in path.iterdir())}")
    try:
        matrix = scipy.io.mmread(matrix_path)
    except (ValueError, OSError) as err:
        raise InputError(matrix_path, f"not a readable MatrixMarket file ({err})") from None
    features = _read_lines_table(features_path)
    barcodes = _read_lines_table(barcodes_path)
    if matrix.shape != (len(features), len(barcodes)):
        raise InputError(
            matrix_path,
            f"shape {matrix.shape} (genes x cells) does not match {len(features)} rows of {features_path.name} "
            f"and {len(barcodes)} rows of {barcodes_path.name}",
        )
    counts = _as_counts(sp.csr_matrix(matrix).T, matrix_path)
    gene_ids = features[0].to_numpy()
    symbols = features[1].to_numpy() if features.shape[1] > 1 else gene_ids
    var = pd.DataFrame({"symbol": symbols.astype(str), "gene_id": gene_ids})
    if features.shape[1] > 2:
        var["feature_type"] = features[2].to_numpy()
        if (var["feature_type"] == GENE_EXPRESSION).any():
            keep = (var["feature_type"] == GENE_EXPRESSION).to_numpy()
            var, counts = var[keep], counts[:, keep]
    var.index = ad.utils.make_index_unique(pd.Index(var.pop("symbol").to_numpy()))
    adata = ad.AnnData(X=counts, obs=pd.DataFrame(index=pd.Index(barcodes[0].astype(str).to_numpy())), var=var)
    _check_unique_cells(adata, barcodes_path)
    return adata


def read_10x_h5(path: PathLike) -> ad.AnnData:
    """Read a Cell Ranger HDF5 matrix (v2 or v3), Gene Expression features only."""
    import scanpy as sc

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        adata = sc.read_10x_h5(path, gex_only=True)
    except (KeyError, OSError, ValueError) as err:
        raise InputError(path, f"not a readable 10x HDF5 count matrix ({type(err).__name__}: {err})") from None
    adata.X = _as_counts(adata.X, path)
    adata.var = adata.var.rename(columns={"gene_ids": "gene_id", "feature_types": "feature_type"})
    adata.var_names_make_unique()
    _check_unique_cells(adata, path)
    return adata


def read_h5ad_counts(path: PathLike, layer: str | None = None) -> ad.AnnData:
    """Counts of an h5ad: the named layer, else layers["counts"], else raw.X, else X (must be integers)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        source = ad.read_h5ad(path)
    except (OSError, KeyError, ValueError) as err:
        raise InputError(path, f"not a readable h5ad file ({err})") from None
    var = source.var
    if layer:
        if layer not in source.layers:
            raise InputError(path, f"layer {layer!r} not found; layers are {list(source.layers)}")
        matrix, where = source.layers[layer], f"layers[{layer!r}]"
    elif "counts" in source.layers:
        matrix, where = source.layers["counts"], "layers['counts']"
    elif source.raw is not None:
        matrix, where, var = source.raw.X, "raw.X", source.raw.var
    else:
        matrix, where = source.X, "X"
    if matrix is None:
        raise InputError(path, f"{where} is empty")
    logger.info("%s: counts from %s", path, where)
    counts = _as_counts(matrix, f"{path} ({where})")
    adata = ad.AnnData(X=counts, obs=source.obs.copy(), var=var.copy())
    adata.var_names_make_unique()
    _check_unique_cells(adata, path)
    return adata


def read_tran_tsv(exprs_path: PathLike) -> ad.AnnData:
    """Tran et al. (2020) benchmark matrix: genes x cells TSV(.gz), header of cell ids, first column the gene.

    Parsed in blocks of genes into a sparse matrix, so a dense 30k x 10k table never sits in memory.
    """
    path = Path(exprs_path)
    if not path.is_file():
        raise InputError(path, "file not found")
    blocks, genes = [], []
    try:
        reader = pd.read_csv(path, sep="\t", index_col=0, chunksize=TSV_GENES_PER_BLOCK)
        for block in reader:
            numeric = block.apply(pd.to_numeric, errors="coerce")
            if numeric.isna().to_numpy().any():
                row, col = np.argwhere(numeric.isna().to_numpy())[0]
                raise InputError(
                    path,
                    f"non-numeric or missing value {block.iat[row, col]!r} for gene {block.index[row]!r}, "
                    f"cell {block.columns[col]!r}; expected integer counts",
                )
            blocks.append(sp.csr_matrix(numeric.to_numpy(dtype=np.float64)))
            genes.extend(block.index.astype(str))
            cells = block.columns.astype(str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise InputError(path, f"not a readable tab-separated matrix ({err})") from None
    if not blocks:
        raise InputError(path, "no genes (the file has a header but no rows)")
    counts = _as_counts(sp.vstack(blocks).T, path)
    adata = ad.AnnData(X=counts, obs=pd.DataFrame(index=pd.Index(cells)), var=pd.DataFrame(index=pd.Index(genes)))
    adata.var["gene_id"] = adata.var_names.to_numpy()
    adata.var_names_make_unique()
    _check_unique_cells(adata, path)
    return adata


def _check_unique_cells(adata: ad.AnnData, source: PathLike) -> None:
    duplicated = adata.obs_names[adata.obs_names.duplicated()].unique()
    if len(duplicated):
        raise InputError(source, f"{len(duplicated)} duplicated cell ids, e.g. {_first(duplicated)}; expected unique ids")


def read_cell_metadata(path: PathLike, cell_column: str | None = "cell") -> pd.DataFrame:
    """Per-cell annotation table (CSV when the name ends .csv[.gz], else TSV), indexed by cell id, as strings.

    An empty or None ``cell_column`` takes the first column.
    """
    path = Path(path)
    name = path.name.removesuffix(".gz")
    sep = "," if name.endswith(".csv") else "\t"
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise InputError(path, f"not a readable {'CSV' if sep == ',' else 'TSV'} table ({err})") from None
    column = cell_column or table.columns[0]
    if column not in table.columns:
        raise InputError(path, f"cell id column {column!r} not found; columns are {list(table.columns)}")
    table = table.set_index(column)
    table.index = table.index.astype(str)
    _check_unique_cells(ad.AnnData(obs=pd.DataFrame(index=table.index)), path)
    return table


def _join_metadata(adata: ad.AnnData, metadata: pd.DataFrame, matrix_path, metadata_path) -> pd.DataFrame:
    """Metadata rows in the matrix's cell order; the two must hold the same cells."""
    cells = adata.obs_names
    only_metadata = metadata.index.difference(cells)
    only_matrix = cells.difference(metadata.index)
    if len(only_metadata) or len(only_matrix):
        raise InputError(
            metadata_path,
            f"cell ids do not match the matrix {matrix_path}: {len(only_metadata)} in the metadata but not the "
            f"matrix (e.g. {_first(only_metadata, 3)}), {len(only_matrix)} in the matrix but not the metadata "
            f"(e.g. {_first(only_matrix, 3)})",
        )
    return metadata.loc[cells]


def _read_source(source: Mapping) -> ad.AnnData:
    fmt, path = source.get("format"), source.get("path")
    if fmt not in FORMATS:
        raise InputError(f"sources: {path}", f"unknown format {fmt!r}; expected one of {list(FORMATS)}")
    if fmt == "10x_mtx":
        return read_10x_mtx(path)
    if fmt == "10x_h5":
        return read_10x_h5(path)
    if fmt == "h5ad":
        return read_h5ad_counts(path, layer=source.get("layer") or None)
    return read_tran_tsv(path)


def _standard_obs(adata: ad.AnnData, source: Mapping, obs_columns: Mapping[str, str]) -> pd.DataFrame:
    """The standard obs columns of one source, from its metadata table or its own obs."""
    annotation = adata.obs
    where = source["path"]
    if source.get("cell_metadata"):
        metadata = read_cell_metadata(source["cell_metadata"], source.get("cell_column", "cell"))
        annotation = _join_metadata(adata, metadata, source["path"], source["cell_metadata"])
        where = source["cell_metadata"]
    obs = pd.DataFrame(index=adata.obs_names)
    for standard, column in obs_columns.items():
        if standard not in STANDARD_OBS:
            raise InputError(f"obs_columns.{standard}", f"unknown standard column; expected one of {list(STANDARD_OBS)}")
        if not column:
            continue
        if column not in annotation.columns:
            raise InputError(
                where, f"column {column!r} (obs_columns.{standard}) not found; columns are {list(annotation.columns)}"
            )
        obs[standard] = annotation[column].astype(str).to_numpy()
    if source.get("batch"):
        obs["batch"] = str(source["batch"])
    return obs


def _join_genes(parts: list[ad.AnnData], paths: list[str], gene_join: str) -> list[ad.AnnData]:
    """Align every source to one gene list: identical sets ("exact") or the intersection ("inner")."""
    if gene_join not in ("exact", "inner"):
        raise InputError("gene_join", f"expected 'exact' or 'inner', got {gene_join!r}")
    genes = parts[0].var_names
    for part, path in zip(parts[1:], paths[1:]):
        if gene_join == "exact" and not genes.equals(part.var_names):
            only_first = genes.difference(part.var_names)
            only_other = part.var_names.difference(genes)
            if len(only_first) or len(only_other):
                raise InputError(
                    path,
                    f"gene sets differ between batches: {len(only_first)} genes only in {paths[0]} "
                    f"(e.g. {_first(only_first, 3)}), {len(only_other)} only in {path} (e.g. {_first(only_other, 3)}); "
                    "use gene_join: inner to keep the common genes",
                )
        genes = genes.intersection(part.var_names, sort=False)
    if gene_join == "inner":
        dropped = [part.n_vars - len(genes) for part in parts]
        logger.info("gene_join inner: %d common genes kept; dropped per source %s", len(genes), dropped)
    if not len(genes):
        raise InputError(paths[0], f"no gene is common to all sources {paths}")
    return [part[:, genes].copy() for part in parts]


def read_singlecell(
    sources: Sequence[Mapping], obs_columns: Mapping[str, str], gene_join: str = "exact"
) -> ad.AnnData:
    """Read and join single-cell sources into the raw AnnData of the data contract.

    Each source: ``format`` (10x_mtx, 10x_h5, h5ad, tran_tsv), ``path``, optional
    ``cell_metadata`` table joined on ``cell_column`` (empty = its first column),
    ``batch`` (a fixed label for all its cells; it wins over a mapped batch column) and
    ``layer`` (h5ad). ``obs_columns``
    maps standard obs names to the source column names (empty = not available).
    """
    if not sources:
        raise InputError("sources", "no single-cell source given")
    parts, paths = [], []
    for source in sources:
        adata = _read_source(source)
        obs = _standard_obs(adata, source, obs_columns)
        if "batch" not in obs:
            raise InputError(
                source["path"], "no batch: map obs_columns.batch to a metadata column or give the source a fixed batch"
            )
        empty = obs.index[(obs == "").any(axis=1) | obs.isna().any(axis=1)]
        if len(empty):
            raise InputError(
                source.get("cell_metadata") or source["path"],
                f"{len(empty)} cells have an empty standard annotation ({list(obs.columns)}), e.g. {_first(empty, 3)}",
            )
        logger.info("%s: %d cells x %d genes", source["path"], adata.n_obs, adata.n_vars)
        parts.append(ad.AnnData(X=adata.X, obs=obs, var=adata.var))
        paths.append(str(source["path"]))
    parts = _join_genes(parts, paths, gene_join)
    names = pd.Index(np.concatenate([part.obs_names.to_numpy() for part in parts]))
    index_unique = None
    if names.duplicated().any():
        # 10x barcodes repeat between runs: suffix the source number (1-based) to keep ids unique.
        logger.warning("cell ids repeat between sources (e.g. %s); suffixing '-<source number>'", _first(names[names.duplicated()], 3))
        index_unique = "-"
    joined = ad.concat(
        parts, join="inner", merge="first", keys=[str(i + 1) for i in range(len(parts))], index_unique=index_unique
    )
    joined.X = sp.csr_matrix(joined.X, dtype=np.float32)
    joined.layers["counts"] = joined.X
    for column in [c for c in STANDARD_OBS if c in joined.obs]:
        joined.obs[column] = pd.Categorical(joined.obs[column].astype(str))
    joined.obs = joined.obs[[c for c in STANDARD_OBS if c in joined.obs]]
    joined.uns["deepexpr"] = {
        "dataset": "",
        "source": paths,
        "package_version": __version__,
        "seed": None,
        "simulated": False,
        "gene_join": gene_join,
        "obs_columns": {k: v for k, v in obs_columns.items() if v},
    }
    return joined
