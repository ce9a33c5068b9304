"""The engine with AlpacaBroker + AlpacaStream against the emulator (paper mode end to end)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from app.broker.alpaca import AlpacaBroker
from app.engine.facade import Engine, TickerRejectedError
from app.engine.orders import algo_order_id
from app.marketdata.backfill import Backfiller
from app.marketdata.stream import AlpacaStream
from tests.broker.test_broker import FAST as BROKER_FAST
from tests.fakes.emulator_fixtures import SESSION_NOW
from tests.marketdata.test_stream import FAST as STREAM_FAST
from tests.waiting import wait_until

PLUGINS = Path(__file__).parents[1] / "plugins"


@pytest.fixture
def make_engine(settings, system_store, market_store, calendar, clock) -> Iterator[Callable[[], Engine]]:
    engines: list[Engine] = []

    def make() -> Engine:
        broker = AlpacaBroker.from_settings(settings, **BROKER_FAST)
        bf = Backfiller(settings, market_store, calendar, clock=clock, rate_limit_wait=0.01)
        feed = AlpacaStream(settings, market_store, calendar, clock=clock, backfiller=bf,
                            **STREAM_FAST)
        e = Engine(mode="paper", system=system_store, market=market_store, broker=broker,
                   feed=feed, clock=clock, calendar=calendar, plugin_dirs=[PLUGINS])
        engines.append(e)
        return e

    yield make
    for e in engines:
        e.close()


def test_ticker_checks_go_to_alpaca(make_engine, emulator) -> None:
    engine = make_engine()
    engine.start()
    for bad, why in (("ZZZZ", "unknown"), ("OLDCO", "not active"), ("NOTRD", "not tradable")):
        with pytest.raises(TickerRejectedError, match=why):
            engine.create_algorithm("scripted", bad, 1000.0)


def test_restart_with_an_order_in_flight(make_engine, emulator, system_store, clock) -> None:
    emulator.faults.fill_mode = "hold"  # the order is accepted but not filled yet
    e1 = make_engine()
    e1.start()
    algo = e1.create_algorithm("scripted", "AAPL", 10_000.0, {"action": "buy", "shares": 5})
    # The plugin's worker may still be starting on a loaded machine (the tick then skips it,
    # as it should): this test is about the order, so it ticks once the plugin is there.
    wait_until(lambda: e1._algos[algo].instance is not None, timeout=60)
    minute = SESSION_NOW
    clock.set(minute + timedelta(seconds=2))
    result = e1.run_tick(minute)
    assert result.errors == {}
    cid = algo_order_id(algo, minute, e1.orders.prefix)
    assert system_store.get_order(cid) is not None, result.decisions
    assert e1.orders.prefix != "at"  # paper: this install's own prefix
    # Sent as pending_new (routed); the stream's "new" reaches the DB (orders-at-alpaca docs).
    assert wait_until(lambda: system_store.get_order(cid)["status"] == "new")
    e1.close()  # the app goes away with the order open at Alpaca

    fill = emulator.fill_order(cid, price=123.45)  # fills while nobody listens
    assert fill["status"] == "filled"

    e2 = make_engine()
    report = e2.start()
    assert cid in report.orders_updated and report.clean
    txs = system_store.transactions(algo)
    assert [(t["type"], t["shares"], t["price"]) for t in txs] == [("buy", 5, 123.45)]
    assert emulator.order_posts == 1  # never placed twice
    view = e2.algorithm_view(algo)
    assert view.position == 5 and view.cash == pytest.approx(10_000.0 - 5 * 123.45)
    # The next minute's tick runs normally and its order fills through the trade stream.
    emulator.faults.fill_mode = "fill"
    clock.set(minute + timedelta(minutes=1, seconds=2))
    e2.run_tick(minute + timedelta(minutes=1))
    assert wait_until(lambda: len(system_store.transactions(algo)) == 2)
    assert e2.algorithm_view(algo).position == 10


def test_stream_drop_mid_session_leaves_no_missing_minute(make_engine, emulator, market_store,
                                                          clock, calendar) -> None:
    engine = make_engine()
    engine.start()
    algo = engine.create_algorithm("scripted", "MSFT", 5_000.0, {"action": "buy", "shares": 1})
    feed = engine.feed
    assert wait_until(lambda: feed.status.state == "connected" and emulator.subscribed() == {"MSFT"})
    now = int(SESSION_NOW.timestamp())
    ticks = 0
    for m in range(8):
        bar_minute = now + 60 * m
        clock.set(SESSION_NOW + timedelta(minutes=m + 1, seconds=2))
        if m == 3:
            emulator.drop_market_connections()
        if m in (3, 4):
            emulator.emit_minute(bar_minute)  # sent while we are disconnected: lost
        else:
            assert wait_until(lambda: feed.status.state == "connected"
                            and emulator.subscribed() == {"MSFT"})
            emulator.emit_minute(bar_minute)
            assert wait_until(lambda bm=bar_minute: market_store.latest_ts("MSFT") == bm)
        engine.run_tick(SESSION_NOW + timedelta(minutes=m + 1))
        ticks += 1
    assert feed.wait_idle()
    session = calendar.session_at(SESSION_NOW)
    got = [r[0] for r in market_store.bars_between("MSFT", int(session.open.timestamp()), now + 480)]
    assert got == list(range(int(session.open.timestamp()), now + 480, 60))
    assert feed.connects >= 2
    assert wait_until(lambda: len(engine.system.transactions(algo)) == ticks)
