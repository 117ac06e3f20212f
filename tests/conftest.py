"""Shared fixtures: the bundled examples and, where present, the media pool in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def examples() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip: CI always has it, a user's clone may not."""
    if not (SHARED_DATA / "media.csv").is_file():
        pytest.skip(f"needs the shared media pool at {SHARED_DATA} (not present in this checkout)")
    return SHARED_DATA
