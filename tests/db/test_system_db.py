import sqlite_utils

from db.migrations import apply, schema_version, system_migrations
from db.system import SystemStore


def test_algorithm_lifecycle(system_store):
    a = system_store.add_algorithm("sma_crossover", "AAPL", 5000.0, {"sma_short": 10}, name="A")
    row = system_store.get_algorithm(a)
    assert row["status"] == "running" and row["params"] == {"sma_short": 10}
    system_store.set_algorithm_status(a, "error", error="run() raised ValueError")
    row = system_store.get_algorithm(a)
    assert row["status"] == "error" and "ValueError" in row["error"] and row["error_at"]
    system_store.set_algorithm_status(a, "stopped")
    assert system_store.get_algorithm(a)["stopped_at"]
    system_store.set_algorithm_status(a, "deleted")
    assert system_store.list_algorithms() == []


def test_transactions_are_idempotent_by_fill_id(system_store):
    a = system_store.add_algorithm("p", "AAPL", 100.0)
    assert system_store.add_transaction(a, "AAPL", "buy", 1, 10.0, "2024-01-31T14:31:00Z",
                                        fill_id="x:1") is not None
    assert system_store.add_transaction(a, "AAPL", "buy", 1, 10.0, "2024-01-31T14:31:00Z",
                                        fill_id="x:1") is None
    assert len(system_store.transactions(a)) == 1


def test_atomic_rolls_back_both_writes(system_store):
    a = system_store.add_algorithm("p", "AAPL", 100.0)
    system_store.insert_order("c1", a, "AAPL", "buy", 2, "2024-01-31T14:31:00Z")
    try:
        with system_store.atomic():
            system_store.update_order("c1", status="filled", filled_qty=2, filled_avg_price=10.0)
            system_store.add_transaction(a, "AAPL", "buy", 2, 10.0, "t", fill_id="c1:2")
            raise RuntimeError("killed between writes")
    except RuntimeError:
        pass
    assert system_store.get_order("c1")["status"] == "intent"
    assert system_store.transactions(a) == []
    assert [o["client_order_id"] for o in system_store.open_orders()] == ["c1"]


def test_settings_roundtrip(system_store):
    assert system_store.get_setting("pin_hash") is None
    system_store.set_setting("idle", "300")
    system_store.set_setting("idle", "60")
    assert system_store.get_setting("idle") == "60"


def test_migrations_upgrade_a_first_version_file_in_place(tmp_path):
    path = tmp_path / "system.db"
    names = [m.name for m in system_migrations._migrations]
    d = sqlite_utils.Database(path)
    if len(names) > 1:
        apply(d, system_migrations, stop_before=names[1])
    else:
        apply(d, system_migrations)
    d.execute("INSERT INTO algorithms (plugin, ticker, initial_capital, created_at) "
              "VALUES ('sma_crossover', 'AAPL', 1000, '2024-01-01T00:00:00Z')")
    d.execute("INSERT INTO settings VALUES ('pin_hash', 'kept')")
    d.conn.commit()
    d.close()
    store = SystemStore(path)
    assert schema_version(store.db, system_migrations) == len(names)
    assert store.get_algorithm(1)["ticker"] == "AAPL"
    assert store.get_setting("pin_hash") == "kept"


def test_newer_schema_is_refused(tmp_path):
    import pytest

    from db.connection import StorageError  # noqa: F401
    from db.migrations import SchemaTooNewError

    path = tmp_path / "system.db"
    SystemStore(path).close()
    d = sqlite_utils.Database(path)
    d["_sqlite_migrations"].insert({"migration_set": "autotrader-system", "name": "m999_future",
                                    "applied_at": "2030"})
    d.close()
    with pytest.raises(SchemaTooNewError, match="newer version"):
        SystemStore(path)


def test_a_file_that_is_not_a_database_names_the_store_and_the_file(tmp_path):
    """Both stores open through db.connection.Store: a broken file is one StorageError that
    names the file (the app turns it into one line, not a traceback)."""
    import pytest

    from db.connection import StorageError
    from db.market import MarketStore

    for cls, what in ((SystemStore, "system DB"), (MarketStore, "market DB")):
        path = tmp_path / f"{what.split()[0]}.db"
        path.write_bytes(b"this is not a SQLite file, just text " * 200)
        with pytest.raises(StorageError, match=f"{path.name}.*not a"):
            cls(path)
    # Read-only openers (plugin workers) run no migration, so they never write.
    SystemStore(tmp_path / "fresh.db").close()
    ro = SystemStore(tmp_path / "fresh.db", readonly=True)
    assert ro.conn.execute("SELECT count(*) FROM algorithms").fetchone()[0] == 0
    ro.close()
