"""Engine test fixtures: real SQLite files, the real calendar, the real simulated broker.

Prices are flat and known (``put_bars``) so money arithmetic can be checked to the cent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.broker.simulated import SimulatedBroker
from app.clock import ManualClock
from app.engine.facade import Engine

HERE = Path(__file__).parent
PLUGINS = HERE / "plugins"
BROKEN = HERE / "plugins_broken"
# Tuesday 2024-06-04, 10:00 New York (14:00 UTC): a regular session.
T0 = datetime(2024, 6, 4, 14, 0, tzinfo=UTC)


def put_bars(market: Any, ticker: str, price: float, start: datetime, end: datetime,
             calendar: Any) -> int:
    """Flat bars at ``price`` for every session minute in [start, end)."""
    rows = [(ticker, int(m.timestamp()), price, price, price, price, 1000)
            for m in calendar.minutes_between(start, end)]
    return market.insert_rows(rows)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def make_engine(system_store, market_store, calendar, clock) -> Callable[..., Engine]:
    engines: list[Engine] = []

    def make(*, timeout: float = 1.0, slippage_bps: float = 0.0, commission: float = 0.0,
             partial: float | None = None, cash: float = 100_000.0,
             price: float = 100.0, tickers: tuple[str, ...] = ("AAA", "BBB"),
             symbols: tuple[str, ...] | None = None, plugin_dirs: list[Path] | None = None,
             start: bool = True) -> Engine:
        for t in tickers:
            put_bars(market_store, t, price, datetime(2024, 6, 3, tzinfo=UTC), T0, calendar)
        broker = SimulatedBroker(system_store, market_store, clock, starting_cash=cash,
                                 slippage_bps=slippage_bps, commission_per_share=commission,
                                 partial_fill_ratio=partial, symbols=symbols,
                                 calendar=calendar)
        engine = Engine(mode="demo", system=system_store, market=market_store, broker=broker,
                        feed=None, clock=clock, calendar=calendar,
                        plugin_dirs=[PLUGINS] if plugin_dirs is None else plugin_dirs,
                        plugin_timeout=timeout)
        engines.append(engine)
        if start:
            engine.start()
        return engine

    yield make
    for e in engines:
        e.close()


# --- a real full disk ----------------------------------------------------------------------
@pytest.fixture
def small_fs(tmp_path: Path):
    """A 16 MB tmpfs mounted for the test (needs root); skipped where it cannot be made
    (tests/engine/test_storage_faults.py's test_full_disk_simulated covers the logic then)."""
    d = tmp_path / "small"
    d.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("cannot mount a small filesystem here (not root)")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(d)],
                      capture_output=True).returncode:
        pytest.skip("mount -t tmpfs refused here")
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill_disk(folder: Path) -> Path:
    """Write zeros into ``folder/filler`` until the filesystem is full; returns the file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler
