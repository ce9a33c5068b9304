"""Alpaca fixtures: the loopback emulator and settings pointing at it, on a shared clock.

The clock is a ManualClock pinned inside a past regular session (Tue 2024-03-05 10:00 ET), so
the emulator's history and the app's calendar agree and no test depends on today's date.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.clock import ManualClock
from app.config import Settings, load_settings
from tests.fakes.alpaca_emulator import AlpacaEmulator

SESSION_NOW = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)  # 10:00 New York, market open


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(SESSION_NOW)


@pytest.fixture
def emulator(clock: ManualClock, calendar) -> Iterator[AlpacaEmulator]:
    # Realism on (issue 11): orders pending_new -> new -> filled, accepted and queued outside
    # the session, day orders canceled at the close, as Alpaca's docs describe them.
    emu = AlpacaEmulator(now=clock.now, calendar=calendar, realism=True).start()
    yield emu
    emu.stop()


def make_settings(emu: AlpacaEmulator, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = dict(emu.setting_values())
    values.update({"mode": "paper", "data_dir": str(tmp_path / "data")})
    values.update(overrides)
    return load_settings(path=tmp_path / "absent.toml", env={}, overrides=values)


@pytest.fixture
def settings(emulator: AlpacaEmulator, tmp_path: Path) -> Settings:
    return make_settings(emulator, tmp_path)
