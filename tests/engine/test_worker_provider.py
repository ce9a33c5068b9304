"""The plugin worker's data provider answers the seed functions as the store's provider does,
with its own shortcuts: ISO strings from a bounded cache, transactions read once a batch."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import db
from app.engine import plugin_worker
from app.engine.plugin_worker import WorkerConfig
from db.corporate import add_event, save_actions

T = datetime(2024, 6, 4, 15, 0, tzinfo=UTC)


@pytest.fixture
def stores(system_store, market_store, calendar):
    start = int(datetime(2024, 6, 3, 13, 30, tzinfo=UTC).timestamp())
    rows = [("AAA", start + 60 * i, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 100 + i)
            for i in range(390)]
    rows += [(t, ts, o + 1, h + 1, lo + 1, c + 1, v) for t, ts, o, h, lo, c, v in rows
             for t in ("BBB",)]
    market_store.insert_rows(rows)
    a1 = system_store.add_algorithm("sma_crossover", "AAA", 10_000.0)
    a2 = system_store.add_algorithm("sma_crossover", "BBB", 10_000.0)
    worker = plugin_worker._provider(WorkerConfig(str(system_store.path),
                                                  str(market_store.path), ()))
    yield system_store, db.StoreProvider(system_store, market_store), worker, a1, a2
    worker.system.close()
    worker.market.close()


def fill(system, algo: int, i: int) -> int | None:
    return system.add_transaction(algo, "AAA", "buy" if i % 2 == 0 else "sell", 1 + i % 3,
                                  100.0 + i, f"2024-06-04T14:{i:02d}:00Z", fill_id=f"f{algo}-{i}")


@pytest.mark.parametrize("n", [0, 1, 51, 390, 600])
def test_last_n_bars_as_the_store(stores, n: int) -> None:
    _, store, worker, _, _ = stores
    for ticker in ("AAA", "BBB"):
        for before in (T, None, datetime(2024, 6, 3, 14, 0, tzinfo=UTC)):
            assert worker.last_n_bars(ticker, n, before) == store.last_n_bars(ticker, n, before)


def test_last_n_bars_new_dicts_and_bounded_cache(stores, monkeypatch) -> None:
    _, store, worker, _, _ = stores
    first = worker.last_n_bars("AAA", 51, T)
    first[0]["ohlcv"]["c"] = -1.0  # a plugin changing its copy
    first[1]["timestamp"] = "changed"
    assert worker.last_n_bars("AAA", 51, T) == store.last_n_bars("AAA", 51, T)
    monkeypatch.setattr(plugin_worker, "ISO_CACHE_MAX", 100)
    for k in range(5):  # more minutes than the cache holds: emptied, still right
        before = datetime(2024, 6, 3, 15 + k, 0, tzinfo=UTC)
        assert worker.last_n_bars("BBB", 60, before) == store.last_n_bars("BBB", 60, before)
        assert len(worker._iso) <= 100
    with pytest.raises(db.BadTickerError):
        worker.last_n_bars("bad ticker", 5, T)


def test_transactions_once_a_batch(stores) -> None:
    system, store, worker, a1, a2 = stores
    for i in range(3):
        fill(system, a1, i)
    worker.new_batch()
    assert worker.transactions(a1) == store.transactions(a1)
    assert worker.transactions(a2) == [] == store.transactions(a2)
    fill(system, a1, 3)
    fill(system, a2, 4)
    # The same batch: as it was when the batch began.
    assert len(worker.transactions(a1)) == 3
    assert worker.transactions(a2) == []
    worker.new_batch()
    assert worker.transactions(a1) == store.transactions(a1)
    assert worker.transactions(a2) == store.transactions(a2) != []
    # Copies: a plugin changing its rows changes nothing the next call returns.
    mine = worker.transactions(a1)
    mine[0]["shares"] = 999
    mine.clear()
    assert worker.transactions(a1) == store.transactions(a1)
    # An algorithm first asked about after others: all of its rows, then the new ones.
    a3 = system.add_algorithm("sma_crossover", "AAA", 10_000.0)
    for i in range(5, 8):
        fill(system, a3, i)
    worker.new_batch()
    assert worker.transactions(a3) == store.transactions(a3)
    fill(system, a3, 8)
    worker.new_batch()
    assert worker.transactions(a3) == store.transactions(a3)
    assert [t["id"] for t in worker.transactions(a3)] == sorted(
        t["id"] for t in worker.transactions(a3))


def test_transactions_with_a_split(stores) -> None:
    system, store, worker, a1, a2 = stores
    for i in range(2):
        fill(system, a1, i)
    worker.new_batch()
    assert worker.transactions(a1) == store.transactions(a1)
    last = system.last_transaction_id()
    save_actions(system, [{"id": "split-1", "ticker": "AAA", "kind": "split",
                           "ex_date": "2024-06-04", "old_rate": 1.0, "new_rate": 2.0}])
    add_event(system, algo_id=a1, action_id="split-1", ticker="AAA", type="split", shares=3,
              old_rate=1.0, new_rate=2.0, after_tx_id=last, timestamp="2024-06-04T13:30:00Z")
    fill(system, a1, 2)
    worker.new_batch()
    got = worker.transactions(a1)
    assert got == store.transactions(a1)
    assert [t.get("event") for t in got] == [None, None, "split", None]
    assert worker.transactions(a2) == store.transactions(a2) == []
