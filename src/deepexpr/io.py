"""Small file helpers shared by the library: atomic writes and tidy tables.

Every output is first written next to its final path and renamed into place
only when complete, so a failing step never leaves a half-written file that a
later run would mistake for a result.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; results are shared, so use the usual umask-based mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_table(df: pd.DataFrame, path: str | os.PathLike, index: bool = False) -> None:
    """Write a tab-separated table atomically (gzip when the name ends in .gz).

    The gzip header carries no name or timestamp, so a rerun writes byte-identical files.
    """
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz"):
            with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as stream:
                stream.write(df.to_csv(sep="\t", index=index, na_rep="NA").encode())
        else:
            df.to_csv(tmp, sep="\t", index=index, na_rep="NA")


def read_table(path: str | os.PathLike, **kwargs) -> pd.DataFrame:
    """Read a table written by :func:`write_table`."""
    return pd.read_csv(path, sep="\t", na_values=["NA"], keep_default_na=False, **kwargs)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(obj, path: str | os.PathLike) -> None:
    """Write JSON atomically; numpy scalars/arrays are converted, NaN becomes null."""
    text = json.dumps(_replace_nan(obj), indent=2, sort_keys=False, default=_json_default)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")


def _replace_nan(obj):
    if isinstance(obj, dict):
        return {k: _replace_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_replace_nan(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None
    return obj


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def write_h5ad(adata, path: str | os.PathLike) -> None:
    """Write an AnnData file atomically (compressed)."""
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression="gzip")
