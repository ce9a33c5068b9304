"""One tick: plugin faults, ledger checks, orders and fills, partial fills, listeners."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from app.engine.facade import (
    EngineError,
    InsufficientCapitalError,
    TickerRejectedError,
    UnknownPluginError,
)
from tests.engine.conftest import T0
from tests.waiting import wait_until

M1 = T0 + timedelta(minutes=1)


def broker_positions(engine):
    return {t: int(q) for t, q in engine.broker.get_positions().items()}


def test_good_algorithm_trades_while_faulty_ones_are_refused(make_engine, system_store):
    engine = make_engine(timeout=0.3)
    good = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 10})
    faulty = {
        "raises": engine.create_algorithm("raises", "AAA", 1000),
        "sleeps": engine.create_algorithm("sleeper", "BBB", 1000, {"seconds": 4.0}),
    }
    for kind in ("none", "negative", "fractional", "nan", "three", "word"):
        faulty[kind] = engine.create_algorithm("garbage", "BBB", 1000, {"kind": kind})

    started = time.monotonic()
    r = engine.run_tick(T0)
    took = time.monotonic() - started
    # The hung plugin cost its time limit, not its 4 s.
    assert took < 3.0

    assert [(f["algo_id"], f["type"], f["shares"], f["price"]) for f in r.fills] == [
        (good, "buy", 10, 100.0)]
    expected = {
        "raises": "raised KeyError", "sleeps": "longer than 0.3 s", "none": "got None",
        "negative": "negative", "fractional": "not a whole number", "nan": "NaN",
        "three": "3 values", "word": "unknown action",
    }
    for kind, algo_id in faulty.items():
        assert expected[kind] in r.errors[algo_id], kind
        row = system_store.get_algorithm(algo_id)
        assert row["status"] == "running" and expected[kind] in row["error"]
        assert engine.algorithm_view(algo_id).error == row["error"]
    assert "raises.py:" in r.errors[faulty["raises"]]  # where it failed
    assert good not in r.errors

    # The hung call's worker process was killed and replaced: next minute it is run again
    # (and overruns again); the others run as before.
    r2 = engine.run_tick(M1)
    assert "longer than 0.3 s" in r2.errors[faulty["sleeps"]]
    assert [f["algo_id"] for f in r2.fills] == [good]
    assert engine.algorithm_view(good).position == 20
    assert broker_positions(engine) == {"AAA": 20}
    # No plugin code runs on a thread of this process.
    assert not [t for t in threading.enumerate() if t.name.startswith("plugin-")]


def test_sell_beyond_position_and_buy_beyond_cash_are_refused(make_engine, system_store):
    engine = make_engine()
    seller = engine.create_algorithm("scripted", "AAA", 1000, {"action": "sell", "shares": 5})
    spender = engine.create_algorithm("scripted", "AAA", 500, {"action": "buy", "shares": 6})
    r = engine.run_tick(T0)
    assert "sell 5 refused: holds 0" in r.errors[seller]
    assert "buy 6 refused" in r.errors[spender] and "cash is 500.00" in r.errors[spender]
    assert r.fills == []
    assert system_store.open_orders() == []
    assert engine.broker.get_positions() == {}


def test_orders_carry_a_client_id_from_algorithm_and_minute(make_engine, system_store):
    engine = make_engine()
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 3})
    engine.run_tick(T0)
    [order] = system_store.orders_for(a)
    assert order["client_order_id"] == f"at-{a}-202406041400"
    assert order["status"] == "filled" and order["filled_qty"] == 3
    assert engine.broker.get_order(order["client_order_id"]).filled_qty == 3
    # The same minute never runs twice (a restart inside the minute, a double call).
    again = engine.run_tick(T0)
    assert again.decisions == [] and len(system_store.orders_for(a)) == 1


def test_fill_price_slippage_and_commission_reach_the_ledger(make_engine, system_store):
    engine = make_engine(slippage_bps=10, commission=0.01)
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 10})
    r = engine.run_tick(T0)
    [f] = r.fills
    assert f["price"] == pytest.approx(100.1)  # last close 100 + 10 bps
    assert f["commission"] == pytest.approx(0.10)
    v = engine.algorithm_view(a)
    assert v.cash == pytest.approx(5000 - 1001.0 - 0.10)
    assert v.avg_cost == pytest.approx(100.1)
    assert v.pnl == pytest.approx(10 * 100.0 - 1001.0 - 0.10)
    assert engine.broker.get_account().cash == pytest.approx(100_000 - 1001.0 - 0.10)


def test_partial_fills_are_recorded_as_they_come(make_engine, system_store, clock, calendar,
                                                market_store):
    from tests.engine.conftest import put_bars

    engine = make_engine(partial=0.5)
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 10})
    clock.set(T0 + timedelta(seconds=2))
    r = engine.run_tick(T0)
    assert [(f["shares"], f["price"]) for f in r.fills] == [(5, 100.0)]
    [order] = system_store.orders_for(a)
    assert order["status"] == "partially_filled" and order["filled_qty"] == 5
    assert engine.algorithm_view(a).position == 5

    # The price moves; a minute later the broker fills the rest, seen by the next tick's poll.
    put_bars(market_store, "AAA", 110.0, T0, M1, calendar)
    clock.set(M1 + timedelta(seconds=2))
    scripted_off = engine.algorithm_view(a)
    assert scripted_off.position == 5
    r2 = engine.run_tick(M1)
    first = [f for f in r2.fills if f["fill_id"].startswith(order["client_order_id"])]
    assert [(f["shares"], f["price"]) for f in first] == [(5, 110.0)]
    tx = system_store.transactions(a)
    assert [t["shares"] for t in tx][:2] == [5, 5]
    assert system_store.get_order(order["client_order_id"])["status"] == "filled"
    led = engine.algorithm_view(a)
    assert led.avg_cost == pytest.approx(sum(t["shares"] * t["price"] for t in tx) / led.position)
    assert broker_positions(engine) == {"AAA": led.position}


def test_listeners_hear_ticks_and_fills(make_engine):
    engine = make_engine()
    heard: dict[str, list] = {"tick": [], "fill": [], "changed": []}

    class Listener:
        def on_tick(self, result):
            heard["tick"].append(result.minute)

        def on_fill(self, algo_id, tx):
            heard["fill"].append((algo_id, tx["shares"]))

        def on_algorithms_changed(self):
            heard["changed"].append(1)

    class Broken:
        def on_tick(self, result):
            raise RuntimeError("a listener bug must not stop the engine")

    engine.add_listener(Broken())
    engine.add_listener(Listener())
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 2})
    engine.run_tick(T0)
    assert heard["tick"] == [T0] and heard["fill"] == [(a, 2)] and heard["changed"]


def test_create_algorithm_refuses_bad_requests_and_stores_nothing(make_engine, system_store,
                                                                  monkeypatch):
    # What is refused, not how long create waits: a busy machine can take longer than the
    # 0.6 s create waits for a plugin process's __init__ (then the error comes later, on the
    # card, as test_plugin_processes covers); here create waits for the answer.
    monkeypatch.setattr("app.engine.lifecycle.PLUGIN_WAIT", 30.0)
    engine = make_engine(symbols=("AAA", "BBB"), cash=10_000)
    with pytest.raises(UnknownPluginError):
        engine.create_algorithm("no_such_plugin", "AAA", 100)
    with pytest.raises(TickerRejectedError, match="not a ticker symbol"):
        engine.create_algorithm("scripted", "aa a", 100)
    with pytest.raises(TickerRejectedError, match="unknown to the broker"):
        engine.create_algorithm("scripted", "ZZZZ", 100)
    with pytest.raises(EngineError, match="positive"):
        engine.create_algorithm("scripted", "AAA", -5)
    with pytest.raises(EngineError, match="no parameter"):
        engine.create_algorithm("scripted", "AAA", 100, {"nope": 1})
    with pytest.raises(EngineError, match="cannot start"):
        engine.create_algorithm("bad_init", "AAA", 100)
    engine.create_algorithm("scripted", "AAA", 6000)
    assert engine.free_capital() == pytest.approx(4000)
    with pytest.raises(InsufficientCapitalError) as e:
        engine.create_algorithm("scripted", "BBB", 4000.01)
    assert e.value.free == pytest.approx(4000)
    assert [a["plugin"] for a in system_store.list_algorithms()] == ["scripted"]
    summary = engine.account_summary()
    assert summary["free"] == pytest.approx(4000) and summary["broker"] == "simulated"


def test_late_bar_rule_the_algorithm_runs_on_what_is_stored(make_engine, market_store,
                                                            calendar, clock):
    from tests.engine.conftest import put_bars

    engine = make_engine()
    # Bars stop at T0 - 1 min: the bar for T0 (needed at the T0 + 1 min tick) is late.
    a = engine.create_algorithm("fresh_bar", "AAA", 5000)
    assert engine.run_tick(T0).decisions[0]["action"] == "buy"  # bar 13:59 is there
    late = engine.run_tick(M1)
    assert late.decisions[0]["action"] == "hold"  # bar 14:00 missing: runs on what is stored
    put_bars(market_store, "AAA", 101.0, M1, M1 + timedelta(minutes=1), calendar)
    clock.set(M1 + timedelta(minutes=1, seconds=2))
    r = engine.run_tick(M1 + timedelta(minutes=1))
    assert r.decisions[0]["action"] == "buy"
    # The fill used the newest stored bar's close.
    assert r.fills[0]["price"] == 101.0
    # A corrected bar replaces the stored one.
    put_bars(market_store, "AAA", 102.5, M1, M1 + timedelta(minutes=1), calendar)
    assert market_store.latest_price("AAA") == 102.5
    assert engine.algorithm_view(a).last_price == 102.5


def test_a_broker_update_during_a_tick_never_waits_for_it(make_engine, clock):
    engine = make_engine(partial=0.5)
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 10})
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)
    assert engine.algorithm_view(a).position == 5
    engine.create_algorithm("scripted", "BBB", 1000, {"delay": 1.5})
    tick = threading.Thread(target=engine.run_tick, args=(M1,))
    tick.start()
    wait_until(lambda: engine.in_tick, what="the tick to start placing orders")
    started = time.monotonic()
    [update] = engine.broker.fill_pending()  # the broker's thread reports the rest
    assert time.monotonic() - started < 1.0 and tick.is_alive()
    tick.join(timeout=10)
    assert not tick.is_alive()
    # Recorded once the tick let go: 10 from the first order, plus half of this minute's.
    assert update.filled_qty == 10
    wait_until(lambda: engine.algorithm_view(a).position == 15, what="position 15")
    assert engine.system.get_order(f"at-{a}-202406041400")["filled_qty"] == 10


def test_shares_still_working_at_the_broker_count_against_cash(make_engine, clock):
    engine = make_engine(partial=0.5)
    a = engine.create_algorithm("scripted", "AAA", 1600, {"action": "buy", "shares": 10})
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)  # 5 filled (cash 1100), 5 still working (500 more to pay)
    r = engine.run_tick(M1)  # same broker minute: the rest is not filled yet
    assert "buy 10 refused" in r.errors[a] and "cash is 600.00" in r.errors[a]
    engine.broker.fill_pending()
    assert engine.algorithm_view(a).cash == 600.0


def test_a_plugin_still_starting_skips_the_minute_without_an_error(make_engine):
    """A worker's cold start slower than the tick's wait (seen on a loaded machine after
    create/resume): that minute is skipped and recorded, but it is no error on the card."""
    from concurrent.futures import Future

    from app.engine.tick import STARTING

    engine = make_engine()
    aid = engine.create_algorithm("scripted", "AAA", 1000, {"action": "buy", "shares": 1})
    a = engine._algos[aid]
    # The state create/resume leave while the object is still being made: no instance yet and
    # a pending future (set by hand: a start that outlasts the tick's wait is timing-bound).
    pending: Future = Future()
    a.instance, a.starting = None, pending
    engine._adopt_started = lambda timeout: None  # the tick's wait ran out
    r = engine.run_tick(T0)
    assert r.errors == {}
    assert [d["refused"] for d in r.decisions if d["algo_id"] == aid] == [STARTING]
    assert engine.algorithm_view(aid).error is None and engine.algorithm_view(aid).position == 0
