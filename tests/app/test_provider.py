"""The seed functions read the provider they are given; nothing opens the user's DBs unasked."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import db
from app.engine.plugins import use_configured_dbs


@pytest.fixture
def no_provider():
    previous, previous_thread = db.use_provider(None), db.use_thread_provider(None)
    yield
    db.use_provider(previous)
    db.use_thread_provider(previous_thread)


def test_no_provider_raises_instead_of_opening_the_configured_dbs(no_provider, tmp_path,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("AUTOTRADER_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(db.NoDataProviderError, match="open_provider"):
        db.get_transactions(1)
    with pytest.raises(db.NoDataProviderError):
        db.get_data_for_algorithm("AAPL", n=1)
    assert list(tmp_path.iterdir()) == []


def test_use_configured_dbs_is_the_explicit_call_for_a_plugin_run_by_hand(no_provider,
                                                                           tmp_path) -> None:
    settings = SimpleNamespace(system_db_path=tmp_path / "system.db",
                               market_db_path=tmp_path / "market.db")
    provider = use_configured_dbs(settings)
    assert db.current_provider() is provider
    assert db.get_transactions(1) == []
    assert db.get_data_for_algorithm("AAPL", n=5) == []
    assert (tmp_path / "system.db").exists() and (tmp_path / "market.db").exists()
