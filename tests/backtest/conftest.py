"""Backtest fixtures: the fixed reference CSV and its bars."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture
def ref_csv() -> Path:
    """Three NYSE sessions (2024-03-04..06) of a seeded random walk with 4-decimal prices."""
    return DATA / "ref_sma.csv"


@pytest.fixture
def ref_bars(ref_csv: Path, calendar):
    from app.backtest.bars import load_csv

    return load_csv(ref_csv, "REF", calendar)
