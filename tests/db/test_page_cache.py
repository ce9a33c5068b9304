"""SQLite's page cache per connection: small for readers, SQLite's default for bar writers.

Real market DB files; the memory figure is SQLite's own counter (``sqlite3_memory_used``) read
through ctypes from the library the ``sqlite3`` module loaded, skipped where that library is not
a separate shared object.
"""

from __future__ import annotations

import ctypes
import sqlite3
import threading
from datetime import UTC, datetime

import pytest

from db import connection
from db.market import MarketStore

OPEN = int(datetime(2024, 1, 31, 14, 30, tzinfo=UTC).timestamp())


def _cache_kib(conn: sqlite3.Connection) -> int:
    return -int(conn.execute("PRAGMA cache_size").fetchone()[0])


def _in_thread(fn):
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def _fill(store: MarketStore, days: int) -> None:
    day = 86_400
    for d in range(days):
        batch = [(f"T{k:02d}", OPEN + d * day + 60 * i, 10.0, 11.0, 9.0, 10.5, 100)
                 for k in range(20) for i in range(390)]
        store.insert_rows(batch, filter_session=False)


def test_a_reader_gets_the_small_cache_and_a_bar_writer_the_default(tmp_path):
    store = MarketStore(tmp_path / "market.db")
    try:
        assert _in_thread(lambda: _cache_kib(store.conn)) == connection.READ_CACHE_KIB
        store.insert_rows([("AAPL", OPEN, 1.0, 1.0, 1.0, 1.0, 1)])
        assert _cache_kib(store.conn) == connection.WRITE_CACHE_KIB  # the writing thread keeps it
        assert _in_thread(lambda: _cache_kib(store.conn)) == connection.READ_CACHE_KIB
    finally:
        store.close()


def _sqlite_memory_used():
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")
    except OSError:
        return None
    f = lib.sqlite3_memory_used
    f.restype = ctypes.c_int64
    return f


def _libversion() -> str:
    f = ctypes.CDLL("libsqlite3.so.0").sqlite3_libversion
    f.restype = ctypes.c_char_p
    return f().decode()


def test_a_reader_scanning_a_large_db_holds_no_more_than_its_bound(tmp_path):
    used = _sqlite_memory_used()
    if used is None or sqlite3.sqlite_version != _libversion():
        pytest.skip("sqlite3 is not linked to a separate libsqlite3 here")
    store = MarketStore(tmp_path / "market.db")
    try:
        _fill(store, 20)  # 156,000 bars, ~9 MB of pages
        store.close()
        store = MarketStore(tmp_path / "market.db")

        def scan() -> float:
            before = used()
            for k in range(20):
                store.bars_between(f"T{k:02d}", OPEN, OPEN + 30 * 86_400)
            return (used() - before) / 1024

        grew_kib = _in_thread(scan)
        # 285 KiB with the 256 KiB bound (schema and statements besides the cache); 2,084 KiB
        # with SQLite's default cache after the same scan.
        assert grew_kib < 1000, grew_kib
    finally:
        store.close()
