"""Write count tables (genes x samples TSV) as an ARCHS4-schema HDF5 file.

Used to run the GeneRAIN study on real data that is not an ARCHS4 download (the offline TCGA-BRCA
counts): each table becomes one "series", and sample labels (e.g. ER/HER2 status) become
``meta/samples`` fields. The result is read by the same reader as a real ARCHS4 file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import h5py
import numpy as np
import pandas as pd

from deepexpr.errors import InputError
from deepexpr.io import atomic_path

PathLike = str | os.PathLike


def _strings(values) -> np.ndarray:
    return np.asarray([str(v).encode() for v in values], dtype="S")


def archs4_from_tables(
    tables: Mapping[str, PathLike],
    out_path: PathLike,
    labels: PathLike | None = None,
    label_sample_column: str = "sample",
) -> pd.DataFrame:
    """Write the tables ``{series name: genes x samples TSV}`` to ``out_path``; return the sample table.

    The first column of each table holds gene symbols; every table must list the same genes. A
    sample in several tables is written once, in the first table's series (a sample in two series
    would join them into one group for the series split). ``labels`` (TSV) adds its columns as
    sample fields, matched on ``label_sample_column`` with ``-`` and ``.`` treated alike (TCGA
    barcodes are written both ways); unmatched samples get ``NA``.
    """
    counts, series = [], []
    genes = None
    for name, path in tables.items():
        table = pd.read_csv(path, sep="\t", index_col=0)
        if table.shape[1] == 0 or not all(np.issubdtype(t, np.integer) for t in table.dtypes):
            raise InputError(path, "expected a genes x samples table of integer counts with gene symbols in column 1")
        if genes is None:
            genes = table.index
        elif not table.index.equals(genes):
            raise InputError(path, f"genes differ from the first table's ({len(table)} vs {len(genes)} rows)")
        new = table.loc[:, ~table.columns.isin([c for frame in counts for c in frame.columns])]
        counts.append(new)
        series += [name] * new.shape[1]
    matrix = pd.concat(counts, axis=1)
    samples = pd.DataFrame({"geo_accession": matrix.columns, "series_id": series})
    if labels is not None:
        table = pd.read_csv(labels, sep="\t", dtype=str)
        if label_sample_column not in table.columns:
            raise InputError(labels, f"no column {label_sample_column!r} (columns: {list(table.columns)})")
        table.index = table.pop(label_sample_column).str.replace("-", ".")
        table = table[~table.index.duplicated()]
        for column in table.columns:
            samples[column.lower()] = table[column].reindex(samples["geo_accession"].str.replace("-", ".")).fillna("NA").to_numpy()
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset(
            "data/expression", data=matrix.to_numpy(dtype=np.uint32),
            chunks=(matrix.shape[0], min(matrix.shape[1], 64)), compression="gzip",
        )  # fmt: skip
        handle["meta/genes/symbol"] = _strings(matrix.index)
        for column in samples.columns:
            handle[f"meta/samples/{column}"] = _strings(samples[column])
        # Bulk tissue: no single-cell signal; the field is required by the reader's QC.
        handle["meta/samples/singlecellprobability"] = np.zeros(len(samples))
    return samples
