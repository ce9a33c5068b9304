"""Fixtures for the ops tests: a populated data folder and a process that holds it open."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def populated(data_dir: Path, calendar) -> Path:
    """A data folder with both DBs holding a little real data."""
    from db.market import MarketStore
    from db.system import SystemStore

    system = SystemStore(data_dir / "system.db")
    a = system.add_algorithm("sma_crossover", "AAPL", 5_000.0, params={"fast": 20}, name="A")
    b = system.add_algorithm("sma_crossover", "MSFT", 3_000.0, name="B")
    system.add_transaction(a, "AAPL", "buy", 10, 185.25, "2024-01-02T15:00:00Z", fill_id="x1")
    system.add_transaction(a, "AAPL", "sell", 4, 186.5, "2024-01-02T15:30:00Z", fill_id="x2")
    system.add_transaction(b, "MSFT", "buy", 2, 370.0, "2024-01-02T16:00:00Z", fill_id="x3")
    system.close()
    market = MarketStore(data_dir / "market.db", calendar)
    start = 1704207600  # 2024-01-02 15:00 UTC = 10:00 New York, in the session
    market.insert_rows([("AAPL", start + 60 * i, 185.0, 185.5, 184.5, 185.2, 100) for i in range(30)])
    market.close()
    return data_dir


@pytest.fixture
def holder(populated: Path) -> Iterator[subprocess.Popen]:
    """Another process with the data folder's DBs open (as a running AutoTrader has)."""
    yield from _holder(populated)


def _holder(data: Path, *extra: str) -> Iterator[subprocess.Popen]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "tests.ops.holder", str(data), *extra],
                            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", f"holder did not start: {line!r}"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)


@pytest.fixture
def writer(populated: Path) -> Iterator[subprocess.Popen]:
    """A process writing order+fill pairs into the system DB as fast as it can."""
    yield from _holder(populated, "--write")


def transactions(path: Path) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT algo_id, ticker, type, shares, price, timestamp "
                            "FROM transactions ORDER BY id").fetchall()
    finally:
        conn.close()
