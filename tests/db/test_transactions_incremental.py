"""``SystemStore.transactions`` reads only the rows after the last one it has (issue 15): the
answers must stay exactly what a full read of the table gives, on every connection and thread,
across rolled-back writes, and a caller changing its answer must not change the next one."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from db.system import SystemStore


def _full(path: Path, algo_id: int) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT id, algo_id, order_id, ticker, type, shares, price, commission, timestamp "
            "FROM transactions WHERE algo_id = ? ORDER BY id", (algo_id,)).fetchall()
    finally:
        conn.close()


def _tuples(txs: list) -> list[tuple]:
    return [(t["id"], t["algo_id"], t["order_id"], t["ticker"], t["type"], t["shares"],
             t["price"], t["commission"], t["timestamp"]) for t in txs]


def _add(store: SystemStore, algo_id: int, i: int) -> int | None:
    return store.add_transaction(algo_id, "AAPL", "buy" if i % 2 == 0 else "sell", 1 + i,
                                 100.0 + i, f"2024-01-02T15:{i % 60:02d}:00Z", fill_id=f"f{i}")


@pytest.fixture
def store(tmp_path: Path) -> SystemStore:
    return SystemStore(tmp_path / "system.db")


def test_new_rows_appear_and_answers_are_copies(store: SystemStore, tmp_path: Path) -> None:
    a = store.add_algorithm("sma_crossover", "AAPL", 10_000.0)
    b = store.add_algorithm("sma_crossover", "AAPL", 10_000.0)
    assert store.transactions(a) == []
    for i in range(3):
        _add(store, a, i)
    _add(store, b, 3)
    first = store.transactions(a)
    assert _tuples(first) == _full(tmp_path / "system.db", a)
    first[0]["shares"] = 999  # a plugin scribbling on its answer
    first.append({"type": "buy"})  # type: ignore[typeddict-item]
    _add(store, a, 4)
    second = store.transactions(a)
    assert _tuples(second) == _full(tmp_path / "system.db", a)
    assert second[0]["shares"] == 1 and len(second) == 4
    assert _tuples(store.transactions(b)) == _full(tmp_path / "system.db", b)


def test_a_rolled_back_fill_is_not_kept(store: SystemStore, tmp_path: Path) -> None:
    a = store.add_algorithm("sma_crossover", "AAPL", 10_000.0)
    _add(store, a, 0)
    assert len(store.transactions(a)) == 1
    with pytest.raises(RuntimeError), store.atomic():
        _add(store, a, 1)
        inside = store.transactions(a)  # this connection sees its own uncommitted row
        assert [t["shares"] for t in inside] == [1, 2]
        raise RuntimeError("the order's other write failed")
    assert _tuples(store.transactions(a)) == _full(tmp_path / "system.db", a)
    _add(store, a, 5)  # takes the rolled-back row's id again (no AUTOINCREMENT)
    after = store.transactions(a)
    assert _tuples(after) == _full(tmp_path / "system.db", a)
    assert [t["shares"] for t in after] == [1, 6]


def test_a_reader_store_sees_the_writers_rows(store: SystemStore, tmp_path: Path) -> None:
    # As a plugin worker process does: its own read-only store on the same file.
    a = store.add_algorithm("sma_crossover", "AAPL", 10_000.0)
    reader = SystemStore(tmp_path / "system.db", readonly=True)
    try:
        assert reader.transactions(a) == []
        for i in range(5):
            _add(store, a, i)
            assert _tuples(reader.transactions(a)) == _full(tmp_path / "system.db", a)
    finally:
        reader.close()


def test_threads_reading_while_fills_arrive(store: SystemStore, tmp_path: Path) -> None:
    a = store.add_algorithm("sma_crossover", "AAPL", 10_000.0)
    done = threading.Event()
    errors: list[str] = []

    def read() -> None:
        last = 0
        while not done.is_set():
            txs = store.transactions(a)
            ids = [t["id"] for t in txs]
            if ids != sorted(set(ids)) or len(ids) < last:
                errors.append(f"ids {ids} after {last} rows")
            last = len(ids)

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    try:
        for i in range(200):
            _add(store, a, i)
    finally:
        done.set()
        for t in readers:
            t.join()
    assert not errors, errors[:3]
    assert _tuples(store.transactions(a)) == _full(tmp_path / "system.db", a)
    assert len(store.transactions(a)) == 200
