"""The demo knows its symbols (issue 12): a fixed market of well-known stocks and ETFs, anything
else refused as unknown, as a real broker does; algorithms a demo already has on a made-up
ticker (created before the fixed market) keep running after the upgrade."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.broker.demo_universe import UNIVERSE, known_symbols
from app.broker.simulated import SimulatedBroker
from app.clock import ManualClock
from app.config import load_settings
from app.control.cli import apply_offline
from app.engine.facade import Engine, TickerRejectedError
from app.engine.runner import build_engine
from app.marketdata.replay import ReplaySource, write_marker
from app.marketdata.synthetic import KNOWN_PRICES, SyntheticFeed
from db.market import TICKER_RE, MarketStore
from db.system import SystemStore

DAY = date(2024, 6, 4)


def demo_settings(tmp_path, **overrides):
    return load_settings(path=tmp_path / "absent.toml", env={},
                         overrides={"mode": "demo", "data_dir": str(tmp_path / "data"),
                                    "demo.start_date": DAY.isoformat(), **overrides})


def build(settings, calendar):
    return build_engine(settings, clock=ManualClock(calendar.session_on(DAY).open))


def close(engine) -> None:
    engine.close()
    engine.system.close()
    engine.market.close()


def run_minutes(engine, calendar, n: int) -> list:
    fills = []
    for minute in calendar.session_on(DAY).minutes()[:n]:
        engine.clock.set(minute + timedelta(seconds=2))
        fills += engine.run_tick(minute).fills
    return fills


def test_the_table_is_one_market_for_broker_and_feed() -> None:
    symbols = [x.symbol for x in UNIVERSE]
    assert 40 <= len(symbols) <= 70 and len(set(symbols)) == len(symbols)
    assert all(TICKER_RE.match(s) for s in symbols)
    assert all(x.name and 1 < x.price < 2000 for x in UNIVERSE)
    assert set(KNOWN_PRICES) == set(symbols)  # the feed's levels are the table's
    assert KNOWN_PRICES["AMZN"] == 185.0 and KNOWN_PRICES["AAPL"] == 190.0  # unchanged levels


def test_the_demo_refuses_an_unknown_ticker_and_names_a_known_one(tmp_path, calendar) -> None:
    engine, _ = build(demo_settings(tmp_path), calendar)
    try:
        # The first run's seeded algorithms are on tickers of the market.
        assert [a["ticker"] for a in engine.system.list_algorithms()] == ["AAPL", "MSFT", "NVDA"]
        assert engine.broker.get_ticker("AMZN").name == "Amazon.com"
        with pytest.raises(TickerRejectedError,
                           match=r"ZZZZZ: unknown to the broker \(ZZZZZ is not listed in the "
                                 r"simulated market"):
            engine.create_algorithm("buy_and_hold", "ZZZZZ", 1000)
        algo_id = engine.create_algorithm("buy_and_hold", "AMZN", 1000)
        engine.start()
        fills = run_minutes(engine, calendar, 3)
        assert [(f["algo_id"], f["ticker"]) for f in fills if f["algo_id"] == algo_id] == \
            [(algo_id, "AMZN")]
        assert 150 < fills[-1]["price"] < 220  # AMZN at its level, not a made-up one
        assert "ZZZZZ" not in {a["ticker"] for a in engine.system.list_algorithms()}
    finally:
        close(engine)


def test_the_cli_add_refuses_an_unknown_ticker_with_the_reason(tmp_path, calendar) -> None:
    settings = demo_settings(tmp_path)
    close(build(settings, calendar)[0])  # the first run (seeds the demo)
    ans = apply_offline(settings, {"cmd": "add", "plugin": "buy_and_hold", "ticker": "ZZZZZ",
                                   "capital": 1000.0, "params": {}, "name": ""})
    assert not ans["ok"] and "ZZZZZ: unknown to the broker" in ans["error"]
    ans = apply_offline(settings, {"cmd": "add", "plugin": "buy_and_hold", "ticker": "KO",
                                   "capital": 1000.0, "params": {}, "name": ""})
    assert ans["ok"] and ans["algorithm"]["ticker"] == "KO"


def test_an_algorithm_on_an_old_made_up_ticker_keeps_running(tmp_path, calendar) -> None:
    settings = demo_settings(tmp_path)
    # A demo of an earlier version: any well-formed ticker was accepted (no ``symbols``).
    settings.data_path.mkdir(parents=True)
    clock = ManualClock(calendar.session_on(DAY).open)
    system = SystemStore(settings.system_db_path)
    market = MarketStore(settings.market_db_path, calendar)
    feed = SyntheticFeed(market, clock, calendar)
    old = Engine(mode="demo", system=system, market=market, feed=feed, clock=clock,
                 broker=SimulatedBroker(system, market, clock, calendar=calendar),
                 calendar=calendar, before_tick=feed.ensure_until)
    old_id = old.create_algorithm("buy_and_hold", "QXYZ", 5000)
    old.close()
    system.close()
    market.close()

    engine, _ = build(settings, calendar)  # the upgrade
    try:
        assert engine.broker.get_ticker("QXYZ").name == "QXYZ (simulated)"
        engine.start()
        fills = run_minutes(engine, calendar, 3)
        assert [f["ticker"] for f in fills if f["algo_id"] == old_id] == ["QXYZ"]
        assert engine.algorithm_view(old_id).status == "running"
        assert engine.algorithm_view(old_id).position > 0
        with pytest.raises(TickerRejectedError, match="unknown to the broker"):
            engine.create_algorithm("buy_and_hold", "QXYZZ", 1000)  # others stay unknown
    finally:
        close(engine)


def test_configured_demo_tickers_and_splits_stay_known(tmp_path, calendar) -> None:
    settings = demo_settings(tmp_path, **{"demo.tickers": ["AAPL", "MYCO"],
                                          "demo.splits": ["SPLT:2024-07-01:2"]})
    engine, _ = build(settings, calendar)
    try:
        assert [a["ticker"] for a in engine.system.list_algorithms()] == ["AAPL", "MYCO"]
        assert engine.broker.get_ticker("SPLT").symbol == "SPLT"
    finally:
        close(engine)


def test_a_replay_knows_the_tickers_of_its_day(tmp_path, calendar) -> None:
    source = tmp_path / "source.db"
    store = MarketStore(source, calendar)
    s = calendar.session_on(DAY)
    store.insert_rows([("REPL", int(s.open.timestamp()) + 60 * i, 10.0, 10.1, 9.9, 10.0, 100)
                       for i in range(30)])
    store.close()
    settings = demo_settings(tmp_path, **{"demo.tickers": ["REPL"]})
    write_marker(settings.data_path, ReplaySource(DAY, source))
    engine, _ = build(settings, calendar)
    try:
        assert engine.broker.get_ticker("REPL").symbol == "REPL"
        with pytest.raises(TickerRejectedError, match="unknown to the broker"):
            engine.create_algorithm("buy_and_hold", "AMZN", 1000)  # not in the stored day
    finally:
        close(engine)


def test_known_symbols_adds_the_existing_algorithms(system_store) -> None:
    system_store.add_algorithm("buy_and_hold", "OLDT", 1000.0, name="Old")
    known = known_symbols(system_store, ["CONF"])
    assert known["AMZN"] == "Amazon.com" and known["OLDT"] == known["CONF"] == ""
    assert "ZZZZZ" not in known
    assert known_symbols(system_store, listed=["REPL", "KO"]) == {
        "REPL": "", "KO": "Coca-Cola", "OLDT": ""}
