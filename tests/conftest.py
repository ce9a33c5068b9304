"""Shared fixtures: real SQLite files in a temporary folder, the real XNYS calendar."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test reads the developer's real config, keys or data folder."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local/state"))
    for name in list(os.environ):
        if name.startswith(("APCA_", "AUTOTRADER_")):
            monkeypatch.delenv(name, raising=False)
    yield
    import db

    db.use_provider(None)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def calendar():
    from db.calendar import nyse

    return nyse()


@pytest.fixture
def market_store(data_dir: Path, calendar):
    from db.market import MarketStore

    store = MarketStore(data_dir / "market.db", calendar)
    yield store
    store.close()


@pytest.fixture
def system_store(data_dir: Path):
    from db.system import SystemStore

    store = SystemStore(data_dir / "system.db")
    yield store
    store.close()
