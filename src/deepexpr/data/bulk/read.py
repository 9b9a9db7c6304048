"""Bulk RNA-seq inputs: genewise count matrices, sample sheets, gene annotation.

Every reader validates strictly and raises :class:`deepexpr.errors.InputError`
naming the file, the column or key, and what was expected, so a bad input is
rejected by the first rule that reads it instead of failing deep in a model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd

from deepexpr import __version__
from deepexpr.config import design_terms
from deepexpr.errors import InputError

PathLike = str | os.PathLike

#: Keys every contrast spec must carry (see the contrast contract).
CONTRAST_KEYS = ("name", "design", "factor", "test", "reference")


def _read_text_table(path: PathLike, **kwargs) -> pd.DataFrame:
    """Read a tab-separated file as strings, keeping empty cells as ''."""
    try:
        return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, **kwargs)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as err:
        raise InputError(path, f"not a readable tab-separated table ({err})") from None


def _first(values, n: int = 5) -> list:
    """The first ``n`` values, for error messages that stay short."""
    return list(values)[:n]


def _integer_column(values: pd.Series, path: PathLike, column: str, gene_ids: pd.Index) -> np.ndarray:
    """Parse one count column as non-negative integers, or raise naming a bad gene."""
    numeric = pd.to_numeric(values.str.strip(), errors="coerce").to_numpy(dtype=float)
    problems = (
        (~np.isfinite(numeric), "a missing or non-numeric value"),
        (np.isfinite(numeric) & (numeric != np.round(numeric)), "a non-integer value"),
        (numeric < 0, "a negative value"),
    )
    for bad, what in problems:
        if bad.any():
            first_bad = int(np.flatnonzero(bad)[0])
            raise InputError(
                path,
                f"column {column!r} has {what} {values.iloc[first_bad]!r} for gene "
                f"{gene_ids[first_bad]!r} ({int(bad.sum())} such cells); expected "
                "non-negative integer counts",
            )
    return numeric.astype(np.int64)


def read_genewise_counts(
    path: PathLike,
    gene_id_column: str = "EntrezGeneID",
    drop_columns: Sequence[str] = ("Length",),
) -> tuple[pd.DataFrame, pd.Series | None]:
    """Read a genes x samples count table (GEO "genewise counts" layout, .gz ok).

    Returns ``(counts, lengths)``: counts as int64 with a string gene-id index
    and one column per sample; lengths from a ``Length`` column when that column
    is among ``drop_columns`` and present, else None. Other ``drop_columns`` are
    ignored when absent.
    """
    table = _read_text_table(path)
    if gene_id_column not in table.columns:
        raise InputError(
            path,
            f"gene id column {gene_id_column!r} not found; columns are {_first(table.columns, 8)}",
        )
    gene_ids = pd.Index(table[gene_id_column].str.strip(), name="gene_id")
    if (gene_ids == "").any():
        row = int(np.flatnonzero(gene_ids == "")[0])
        raise InputError(path, f"column {gene_id_column!r} is empty on data row {row + 1}")
    duplicated = gene_ids[gene_ids.duplicated()].unique()
    if len(duplicated):
        raise InputError(
            path,
            f"column {gene_id_column!r} has {len(duplicated)} duplicated gene ids, e.g. "
            f"{_first(duplicated)}; expected one row per gene",
        )
    sample_columns = [c for c in table.columns if c != gene_id_column and c not in drop_columns]
    if not sample_columns:
        raise InputError(path, f"no sample columns besides {gene_id_column!r} and {list(drop_columns)}")
    counts = pd.DataFrame({c: _integer_column(table[c], path, c, gene_ids) for c in sample_columns}, index=gene_ids)
    lengths = None
    if "Length" in drop_columns and "Length" in table.columns:
        lengths = pd.Series(_integer_column(table["Length"], path, "Length", gene_ids), index=gene_ids, name="length")
    return counts, lengths


def read_sample_sheet(
    path: PathLike,
    required: Sequence[str] = ("sample", "count_column"),
    design_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a sample sheet (TSV, one row per sample) as strings, validated.

    The ``sample`` and ``count_column`` values must be unique and every
    required or design column present and non-empty.
    """
    sheet = _read_text_table(path)
    sheet.columns = sheet.columns.str.strip()
    needed = list(dict.fromkeys([*required, *design_columns]))
    missing = [c for c in needed if c not in sheet.columns]
    if missing:
        raise InputError(path, f"missing column(s) {missing}; columns are {list(sheet.columns)}")
    if sheet.empty:
        raise InputError(path, "no samples (the sheet has a header but no rows)")
    sheet[needed] = sheet[needed].apply(lambda column: column.str.strip())
    for column in needed:
        empty = sheet.index[sheet[column] == ""]
        if len(empty):
            raise InputError(path, f"column {column!r} is empty on data row(s) {[int(i) + 1 for i in _first(empty)]}")
    for column in ("sample", "count_column"):
        if column in sheet.columns:
            duplicated = sheet[column][sheet[column].duplicated()].unique()
            if len(duplicated):
                raise InputError(path, f"column {column!r} has duplicated values {_first(duplicated)}")
    return sheet


def match_samples(
    counts: pd.DataFrame, sheet: pd.DataFrame, counts_path: PathLike, sheet_path: PathLike
) -> pd.DataFrame:
    """Return ``counts`` with columns in sheet order, renamed to sheet sample ids.

    The sheet's ``count_column`` values and the matrix columns must be the same
    set; otherwise the error lists what each side lacks.
    """
    in_matrix_only = [c for c in counts.columns if c not in set(sheet["count_column"])]
    in_sheet_only = [c for c in sheet["count_column"] if c not in set(counts.columns)]
    if in_matrix_only or in_sheet_only:
        raise InputError(
            sheet_path,
            f"column 'count_column' does not match the sample columns of {counts_path}: "
            f"in the matrix but not the sheet: {in_matrix_only}; "
            f"in the sheet but not the matrix: {in_sheet_only}",
        )
    renamed = counts[list(sheet["count_column"])]
    renamed.columns = pd.Index(sheet["sample"], name="sample")
    return renamed


def read_gene_info(path: PathLike) -> pd.Series:
    """Map NCBI GeneID (str) to Symbol from an NCBI ``gene_info`` file (.gz ok)."""
    table = _read_text_table(path, usecols=lambda c: c in ("#tax_id", "GeneID", "Symbol"))
    if "#tax_id" not in table.columns:
        raise InputError(path, "not an NCBI gene_info file: the header must start with '#tax_id'")
    missing = [c for c in ("GeneID", "Symbol") if c not in table.columns]
    if missing:
        raise InputError(path, f"missing column(s) {missing} of the NCBI gene_info format")
    symbols = table.drop_duplicates("GeneID").set_index("GeneID")["Symbol"]
    symbols.index.name = "gene_id"
    return symbols.rename("symbol")


def median_of_ratios_size_factors(counts: np.ndarray) -> np.ndarray:
    """DESeq2 median-of-ratios size factors of a samples x genes count matrix.

    The geometric-mean reference uses only genes with all counts > 0, as in
    DESeq2's ``estimateSizeFactorsForMatrix``. Raises ValueError when no gene
    qualifies.
    """
    positive = (counts > 0).all(axis=0)
    if not positive.any():
        raise ValueError("every gene has a zero count in some sample; median-of-ratios is undefined")
    log_counts = np.log(counts[:, positive].astype(float))
    log_ratios = log_counts - log_counts.mean(axis=0)
    return np.exp(np.median(log_ratios, axis=1))


def _categorical_obs(
    sheet: pd.DataFrame, design_columns: Sequence[str], design_levels: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """Design columns as categoricals (given level order, else sorted), indexed by sample."""
    obs = sheet.set_index("sample")[list(design_columns)].copy()
    obs.index = obs.index.astype(str)
    for column in design_columns:
        levels = list(design_levels.get(column, sorted(obs[column].unique())))
        unknown = sorted(set(obs[column]) - set(levels))
        if unknown:
            raise InputError(f"design_levels.{column}", f"sheet values {unknown} are not among the levels {levels}")
        obs[column] = pd.Categorical(obs[column], categories=levels)
    return obs


def build_bulk_adata(
    counts: pd.DataFrame,
    sheet: pd.DataFrame,
    design_columns: Sequence[str],
    gene_symbols: pd.Series | None = None,
    lengths: pd.Series | None = None,
    min_total_count: int = 10,
    dataset: str = "bulk",
    source: str = "",
    design_levels: Mapping[str, Sequence[str]] | None = None,
) -> ad.AnnData:
    """Assemble the samples x genes bulk AnnData of the contract.

    ``counts`` is genes x samples with columns equal to ``sheet["sample"]``
    (as returned by :func:`match_samples`). Genes with total count below
    ``min_total_count`` are dropped; size factors are median-of-ratios on the
    kept genes and ``X = log2(counts / size_factor + 1)``.
    """
    if list(counts.columns) != list(sheet["sample"]):
        raise ValueError("counts columns must equal sheet['sample'] in order; call match_samples first")
    kept = counts[counts.sum(axis=1) >= min_total_count]
    if kept.empty:
        raise InputError(source or dataset, f"no gene has a total count >= {min_total_count}")
    matrix = kept.to_numpy(dtype=np.int64).T
    try:
        size_factors = median_of_ratios_size_factors(matrix)
    except ValueError as err:
        raise InputError(source or dataset, str(err)) from None

    obs = _categorical_obs(sheet, design_columns, design_levels or {})
    obs["size_factor"] = size_factors
    gene_ids = kept.index.astype(str)
    var = pd.DataFrame(index=pd.Index(gene_ids, name="gene_id"))
    symbols = pd.Series(gene_ids, index=gene_ids)
    if gene_symbols is not None:
        symbols = gene_symbols.reindex(gene_ids).fillna(symbols)
    var["symbol"] = symbols.astype(str).to_numpy()
    if lengths is not None:
        var["length"] = lengths.reindex(gene_ids).to_numpy()

    adata = ad.AnnData(
        X=np.log2(matrix / size_factors[:, None] + 1.0),
        obs=obs,
        var=var,
        layers={"counts": matrix},
    )
    adata.uns["deepexpr"] = {
        "dataset": dataset,
        "source": str(source),
        "n_genes_raw": int(counts.shape[0]),
        "n_genes": int(kept.shape[0]),
        "min_total_count": int(min_total_count),
        "size_factors": "DESeq2 median-of-ratios on the kept genes",
        "package_version": __version__,
    }
    return adata


def validate_contrast(contrast: Mapping, obs: pd.DataFrame, source: str = "config") -> pd.DataFrame:
    """Check a contrast spec against the sample annotation; return the samples it uses.

    Checks the required keys, that the design variables, the factor and the
    subset columns are obs columns, that the subset and the test/reference
    levels exist, that every design variable keeps >= 2 levels after subsetting,
    and that test and reference each have >= 2 samples.
    """
    name = contrast.get("name", "<unnamed>")
    where = f"{source}: contrast {name!r}"
    missing_keys = [k for k in CONTRAST_KEYS if k not in contrast]
    if missing_keys:
        raise InputError(where, f"missing key(s) {missing_keys}")
    factor, test, reference = contrast["factor"], str(contrast["test"]), str(contrast["reference"])
    terms = design_terms(contrast["design"])
    subset = dict(contrast.get("subset") or {})
    for key, columns in (("design", terms), ("factor", [factor]), ("subset", list(subset))):
        absent = [c for c in columns if c not in obs.columns]
        if absent:
            raise InputError(where, f"{key} names column(s) {absent} absent from the samples' {list(obs.columns)}")
    if factor not in terms:
        raise InputError(where, f"factor {factor!r} is not a term of design {contrast['design']!r}")
    if test == reference:
        raise InputError(where, f"test and reference are the same level {test!r}")

    selected = obs
    for column, level in subset.items():
        available = sorted(map(str, obs[column].unique()))
        if str(level) not in available:
            raise InputError(where, f"subset level {level!r} not in column {column!r}; levels are {available}")
        selected = selected[selected[column].astype(str) == str(level)]

    levels = selected[factor].astype(str)
    for role, level in (("test", test), ("reference", reference)):
        n = int((levels == level).sum())
        if n == 0:
            raise InputError(
                where,
                f"{role} level {level!r} of {factor!r} has no samples; levels present are {sorted(levels.unique())}",
            )
        if n < 2:
            raise InputError(where, f"{role} level {level!r} of {factor!r} has {n} sample; at least 2 are needed")
    for term in terms:
        if selected[term].nunique() < 2:
            raise InputError(
                where, f"design term {term!r} has a single level after subset {subset}; drop it from the design"
            )
    return selected
