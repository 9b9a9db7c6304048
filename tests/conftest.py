"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The small real datasets live beside the checkout and are never copied into it.
SHARED_DATA = Path(os.environ.get("DEEPEXPR_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test with a clear reason when it is absent."""
    if not (SHARED_DATA / "SOURCES.md").is_file():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set DEEPEXPR_SHARED_DATA)")
    return SHARED_DATA
