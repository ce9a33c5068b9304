"""The reference plugin and its fast-path twin decide alike; the helpers work anywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import algorithm
from app.marketdata.synthetic import SyntheticFeed
from tests.engine.conftest import T0


def test_reference_and_fast_path_plugins_make_the_same_decisions(make_engine, market_store,
                                                                   calendar, clock):
    open_ = datetime(2024, 6, 4, 13, 30, tzinfo=UTC)
    clock.set(open_)
    feed = SyntheticFeed(market_store, clock, calendar, seed=42)
    engine = make_engine(tickers=())
    for t in ("AAPL", "NVDA"):
        feed.prepare(t)
        feed.subscribe(t)
    ref = {t: engine.create_algorithm("sma_crossover", t, 20_000) for t in ("AAPL", "NVDA")}
    fast = {t: engine.create_algorithm("sma_fast", t, 20_000) for t in ("AAPL", "NVDA")}
    trades = 0
    for i in range(120):
        m = open_ + timedelta(minutes=i)
        clock.set(m + timedelta(seconds=2))
        feed.ensure_until(m)
        r = engine.run_tick(m)
        by_id = {d["algo_id"]: (d["action"], d["shares"]) for d in r.decisions}
        for t in ref:
            assert by_id[ref[t]] == by_id[fast[t]], (m, t)
        trades += sum(d["action"] != "hold" for d in r.decisions)
        assert not r.errors
    assert trades >= 4  # both bought and sold within two hours
    for t in ref:
        assert engine.algorithm_view(ref[t]).position == engine.algorithm_view(fast[t]).position


def test_helpers_outside_the_engine_read_the_transactions(make_engine, clock):
    engine = make_engine()
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 7})
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)
    assert algorithm.context() is None  # not inside a plugin call
    assert algorithm.position(a) == 7
    assert algorithm.cash(a, 5000) == engine.algorithm_view(a).cash
    closes = algorithm.closes("AAA", 3, T0)
    assert list(closes) == [100.0, 100.0, 100.0]


def test_live_plugins_read_the_engines_data_while_a_backtest_owns_the_global_provider(
        make_engine, clock, tmp_path, calendar, system_store):
    import db
    from db.market import MarketStore
    from tests.engine.conftest import put_bars

    engine = make_engine()  # AAA at 100 in the live market DB
    other = MarketStore(tmp_path / "backtest-market.db", calendar)
    put_bars(other, "AAA", 50.0, T0 - timedelta(hours=1), T0, calendar)
    a = engine.create_algorithm("buy_and_hold", "AAA", 1000)
    previous = db.use_provider(db.StoreProvider(system_store, other))  # a backtest running
    try:
        clock.set(T0 + timedelta(seconds=2))
        r = engine.run_tick(T0)
    finally:
        db.use_provider(previous)
        other.close()
    assert [(f["algo_id"], f["shares"]) for f in r.fills] == [(a, 9)]  # 980 // 100, not // 50


def test_feed_subscriptions_follow_the_running_algorithms(system_store, market_store, calendar):
    from app.broker.simulated import SimulatedBroker
    from app.clock import ManualClock
    from app.engine.facade import Engine

    clock = ManualClock(datetime(2024, 6, 4, 14, 0, tzinfo=UTC))
    feed = SyntheticFeed(market_store, clock, calendar, seed=1)
    broker = SimulatedBroker(system_store, market_store, clock, calendar=calendar)
    engine = Engine(mode="demo", system=system_store, market=market_store, broker=broker,
                    feed=feed, clock=clock, calendar=calendar)
    try:
        a1 = engine.create_algorithm("sma_crossover", "AAPL", 1000)  # created before start
        a2 = engine.create_algorithm("sma_crossover", "AAPL", 1000)
        engine.create_algorithm("sma_crossover", "MSFT", 1000)
        engine.start()
        assert feed.subscribed() == {"AAPL", "MSFT"}
        assert market_store.count("AAPL") == 3 * 390 + 30  # history up to 10:00
        engine.stop_algorithm(a1)
        assert feed.subscribed() == {"AAPL", "MSFT"}  # a2 still runs on it
        engine.delete_algorithm(a2)
        assert feed.subscribed() == {"MSFT"}
        engine.resume_algorithm(a1)
        assert feed.subscribed() == {"AAPL", "MSFT"}
        engine.stop_all()
        assert feed.subscribed() == set()
    finally:
        engine.close()


def test_live_seed_style_plugins_read_their_own_transactions_during_a_backtest(
        make_engine, clock, tmp_path, calendar, system_store, market_store):
    import db
    from db.system import SystemStore

    engine = make_engine()
    engine.create_algorithm("seed_seesaw", "AAA", 5000, {"shares": 3})
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)  # holds 3
    other = SystemStore(tmp_path / "backtest-system.db")  # no transactions at all
    previous = db.use_provider(db.StoreProvider(other, market_store))
    try:
        clock.set(T0 + timedelta(minutes=1, seconds=2))
        r = engine.run_tick(T0 + timedelta(minutes=1))
    finally:
        db.use_provider(previous)
        other.close()
    assert [(d["action"], d["shares"]) for d in r.decisions] == [("sell", 3)]
