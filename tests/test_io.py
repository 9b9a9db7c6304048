"""deepexpr.io: atomic writes and reproducible files."""

import os
import stat

import pandas as pd
import pytest

from deepexpr.io import atomic_path, read_table, write_table


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.tsv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_gzip_tables_are_byte_identical_across_writes(tmp_path):
    table = pd.DataFrame({"gene_id": ["g1", "g2"], "value": [1.5, None]})
    write_table(table, tmp_path / "a.tsv.gz")
    os.utime(tmp_path, (0, 0))
    write_table(table, tmp_path / "b.tsv.gz")
    assert (tmp_path / "a.tsv.gz").read_bytes() == (tmp_path / "b.tsv.gz").read_bytes()
    pd.testing.assert_frame_equal(read_table(tmp_path / "a.tsv.gz"), table)


def test_outputs_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.tsv")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "t.tsv").stat().st_mode) == 0o644
