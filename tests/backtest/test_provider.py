"""The backtest's data provider answers exactly as the live DBs would, up to the simulated now."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

import db
from app.backtest.provider import BacktestProvider
from db.timeutil import from_epoch


@pytest.fixture
def stored(market_store, ref_bars):
    market_store.insert_rows(
        ("REF", int(t), float(o), float(h), float(lo), float(c), int(v)) for t, o, h, lo, c, v
        in zip(ref_bars.ts, ref_bars.o, ref_bars.h, ref_bars.l, ref_bars.c, ref_bars.v,
               strict=True))
    return market_store


@pytest.mark.parametrize("i", [0, 1, 37, 390, 391, 800, 1169])
@pytest.mark.parametrize("n", [0, 1, 51, 500])
def test_same_answers_as_the_market_db(stored, system_store, ref_bars, i, n):
    live = db.StoreProvider(system_store, stored)
    bt = BacktestProvider(ref_bars)
    now = from_epoch(int(ref_bars.ts[i]))
    bt.advance(i, now, int(ref_bars.ts[i]))
    assert bt.last_n_bars("REF", n, now) == live.last_n_bars("REF", n, now)
    with db.provider_scope(bt):
        assert db.get_data_for_algorithm("REF", "last_n_bars", n=n, before_timestamp=now) == \
               live.last_n_bars("REF", n, now)
        # the same question asked with an ISO string or another datetime object
        assert db.get_data_for_algorithm("REF", n=n, before_timestamp=now.isoformat()) == \
               live.last_n_bars("REF", n, now)
    assert bt.latest_price("REF") == stored.latest_price("REF", before_ts=int(now.timestamp()))


def test_answers_are_capped_at_the_simulated_now(ref_bars):
    bt = BacktestProvider(ref_bars)
    i = 500
    now = from_epoch(int(ref_bars.ts[i]))
    bt.advance(i, now, int(ref_bars.ts[i]))
    later = now + timedelta(days=1)
    assert bt.last_n_bars("REF", 3, later) == bt.last_n_bars("REF", 3, now)
    assert bt.last_n_bars("REF", 3, None) == bt.last_n_bars("REF", 3, now)
    assert bt.last_n_bars("REF", 3, now)[-1]["timestamp"] == "2024-03-05T16:19:00Z"  # bar 499
    closes = bt.last_n_closes("REF", 4, later)
    assert np.array_equal(closes, ref_bars.c[i - 4:i])
    with pytest.raises(ValueError):
        closes[0] = 1.0  # a read-only view
    assert bt.last_n_bars("MSFT", 3, now) == [] and bt.latest_price("MSFT") is None


def test_transactions_are_the_algorithms_own_and_read_only(ref_bars):
    bt = BacktestProvider(ref_bars)
    assert bt.transactions(1) == []
    bt.record(1, {"type": "buy", "shares": 3, "price": 10.0, "timestamp": "x"})
    bt.record(2, {"type": "buy", "shares": 1, "price": 11.0, "timestamp": "x"})
    txs = bt.transactions(1)
    assert [t["shares"] for t in txs] == [3]
    with pytest.raises(TypeError, match="read-only"):
        txs.append({})
    assert bt.tampered() == []
    txs[0]["shares"] = 300
    assert bt.tampered() == ["transactions"]


def test_a_changed_bar_is_detected(ref_bars):
    bt = BacktestProvider(ref_bars)
    bt.advance(10, from_epoch(int(ref_bars.ts[10])), int(ref_bars.ts[10]))
    bars = bt.last_n_bars("REF", 2, None)
    assert bt.tampered() == []
    bars[0]["ohlcv"]["v"] = 0
    assert bt.tampered() == ["REF"]


def test_the_window_of_bar_dicts_slides_and_stays_small(ref_bars, monkeypatch):
    import app.backtest.provider as provider_module

    monkeypatch.setattr(provider_module, "WINDOW_CHUNK", 100)
    bt = BacktestProvider(ref_bars)
    whole = BacktestProvider(ref_bars.slice(0, len(ref_bars)))
    s = bt.main
    for i in range(0, 1170, 7):
        now = from_epoch(int(ref_bars.ts[i]))
        bt.advance(i, now, int(ref_bars.ts[i]))
        whole.advance(i, now, int(ref_bars.ts[i]))
        assert bt.last_n_bars("REF", 51, now) == whole.last_n_bars("REF", 51, None)
        assert len(s.win) <= 100 + 51
    # a longer look-back than ever before rebuilds the window further back
    assert bt.last_n_bars("REF", 1000, None) == whole.last_n_bars("REF", 1000, None)
    assert bt.tampered() == []


def test_a_change_to_a_bar_that_left_the_window_is_still_caught(ref_bars, monkeypatch):
    import app.backtest.provider as provider_module

    monkeypatch.setattr(provider_module, "WINDOW_CHUNK", 100)
    bt = BacktestProvider(ref_bars)
    bt.advance(60, from_epoch(int(ref_bars.ts[60])), int(ref_bars.ts[60]))
    bt.last_n_bars("REF", 5, None)[0]["timestamp"] = "changed"
    bt.advance(900, from_epoch(int(ref_bars.ts[900])), int(ref_bars.ts[900]))
    bt.last_n_bars("REF", 5, None)  # the changed bar is dropped from the window here
    assert bt.main.w0 > 60
    assert bt.tampered() == ["REF"]


def test_a_live_plugin_thread_never_reads_the_backtests_data(ref_bars, stored, system_store):
    """The UI can backtest while live algorithms run in the same process: the backtest owns
    the global provider, a live plugin thread keeps its own (``db.use_thread_provider``)."""
    import threading

    bt = BacktestProvider(ref_bars)
    bt.advance(100, from_epoch(int(ref_bars.ts[100])), int(ref_bars.ts[100]))
    bt.record(1, {"type": "buy", "shares": 7, "price": 10.0, "timestamp": "x"})
    live = db.StoreProvider(system_store, stored)
    seen = {}

    def live_thread() -> None:
        db.use_thread_provider(live)
        seen["bars"] = db.get_data_for_algorithm("REF", n=2)
        seen["txs"] = db.get_transactions(1)

    with db.provider_scope(bt):
        t = threading.Thread(target=live_thread)
        t.start()
        t.join(10)
        assert db.get_transactions(1)[0]["shares"] == 7  # this thread: the backtest
    assert seen["txs"] == []
    assert seen["bars"][-1]["timestamp"] == "2024-03-06T20:59:00Z"  # the DB's newest bar
