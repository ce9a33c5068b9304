"""Upgrades keep data: a DB written by the first release opens in this one with its data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from db.connection import connect
from db.migrations import apply, market_migrations, schema_version, system_migrations


def _first_release(path: Path, migrations) -> None:
    """Create ``path`` with only the first migration applied, as release one left it."""
    names = [m.name for m in migrations._migrations]
    db = sqlite_utils.Database(connect(path))
    apply(db, migrations, stop_before=names[1:] or None)
    assert [m.name for m in migrations.applied(db)] == names[:1]
    db.conn.close()


def test_system_db_from_the_first_release_is_migrated_with_its_data(data_dir: Path) -> None:
    from db.system import SystemStore

    path = data_dir / "system.db"
    _first_release(path, system_migrations)
    old = sqlite3.connect(path)
    # Rows as release one wrote them (its columns only).
    old.execute("INSERT INTO algorithms (id, name, plugin, ticker, initial_capital, params, "
                "status, created_at) VALUES (1, 'old', 'sma_crossover', 'AAPL', 2500.0, "
                "'{\"fast\": 5}', 'running', '2024-01-02T15:00:00Z')")
    old.execute("INSERT INTO orders (id, client_order_id, algo_id, ticker, side, qty, status, "
                "filled_qty, filled_avg_price, minute, created_at, updated_at) VALUES "
                "(1, 'at-1-202401021500', 1, 'AAPL', 'buy', 5, 'filled', 5, 185.5, "
                "'2024-01-02T15:00:00Z', '2024-01-02T15:00:02Z', '2024-01-02T15:00:03Z')")
    old.execute("INSERT INTO transactions (algo_id, order_id, fill_id, ticker, type, shares, "
                "price, timestamp) VALUES (1, 1, 'f1', 'AAPL', 'buy', 5, 185.5, "
                "'2024-01-02T15:00:03Z')")
    old.execute("INSERT INTO settings (key, value) VALUES ('pin_hash', 'scrypt$abc')")
    old.commit()
    old.close()

    store = SystemStore(path)
    try:
        assert schema_version(store.db, system_migrations) == len(system_migrations._migrations)
        algo = store.get_algorithm(1)
        assert algo is not None
        assert (algo["name"], algo["ticker"], algo["initial_capital"], algo["params"]) == \
            ("old", "AAPL", 2500.0, {"fast": 5})
        tx = store.transactions(1)
        assert [(t["type"], t["shares"], t["price"]) for t in tx] == [("buy", 5, 185.5)]
        assert store.get_order("at-1-202401021500")["filled_avg_price"] == 185.5
        assert store.get_setting("pin_hash") == "scrypt$abc"
        # The upgraded file still takes new writes of the current shape.
        store.add_transaction(1, "AAPL", "sell", 2, 186.0, "2024-01-02T15:05:03Z", fill_id="f2")
        assert len(store.transactions(1)) == 2
    finally:
        store.close()


def test_market_db_from_the_first_release_keeps_its_bars(data_dir: Path, calendar) -> None:
    from db.market import MarketStore

    path = data_dir / "market.db"
    _first_release(path, market_migrations)
    old = sqlite3.connect(path)
    old.executemany("INSERT INTO bars (ticker, ts, o, h, l, c, v) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [("AAPL", 1704207600 + 60 * i, 1.0, 2.0, 0.5, 1.5, 10) for i in range(5)])
    old.commit()
    old.close()
    store = MarketStore(path, calendar)
    try:
        assert store.count("AAPL") == 5
        assert store.latest_price("AAPL") == 1.5
    finally:
        store.close()


def test_a_db_from_a_newer_release_is_refused_not_guessed_at(data_dir: Path) -> None:
    from db.connection import StorageError
    from db.migrations import SchemaTooNewError
    from db.system import SystemStore

    SystemStore(data_dir / "system.db").close()
    conn = sqlite3.connect(data_dir / "system.db")
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES "
                 "('autotrader-system', 'm999_from_the_future', '2030-01-01')")
    conn.commit()
    conn.close()
    with pytest.raises((SchemaTooNewError, StorageError), match="newer"):
        SystemStore(data_dir / "system.db")
