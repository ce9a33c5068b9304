"""A simulated week of the demo (real engine, synthetic market, simulated broker, the ops
listener): one snapshot per close, the week's report counted from the capital, and
``report --out``'s charts and CSVs with SPY buy and hold from the market DB."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import pytest

from app.broker.simulated import SimulatedBroker
from app.clock import ManualClock
from app.config import load_settings
from app.engine.facade import Engine
from app.marketdata.synthetic import SyntheticFeed
from app.ops.operations import Operations
from app.ops.performance import report_rows, write_report_files
from db import performance as perf
from db.market import MarketStore
from db.system import SystemStore

PNG = b"\x89PNG\r\n\x1a\n"
WEEK = [date(2024, 6, d) for d in (3, 4, 5, 6, 7)]


@pytest.fixture
def week(tmp_path: Path, calendar):
    settings = load_settings(tmp_path / "none.toml", env={
        "AUTOTRADER_DATA_DIR": str(tmp_path / "d"), "APCA_API_KEY_ID": ""})
    settings.data_path.mkdir(parents=True)
    first = calendar.session_on(WEEK[0])
    clock = ManualClock(first.open)
    market = MarketStore(tmp_path / "d" / "market.db", calendar)
    system = SystemStore(tmp_path / "d" / "system.db")
    feed = SyntheticFeed(market, clock, calendar, seed=42)
    broker = SimulatedBroker(system, market, clock, calendar=calendar)
    engine = Engine(mode="demo", system=system, market=market, broker=broker, feed=feed,
                    clock=clock, calendar=calendar, before_tick=feed.ensure_until)
    ops = Operations(engine, settings)
    engine.add_listener(ops)
    for t, capital in (("AAPL", 20_000), ("MSFT", 15_000)):
        engine.create_algorithm("sma_crossover", t, capital, name=f"Demo SMA {t}")
    engine.start()
    try:
        for day in WEEK:  # the first 40 minutes and the last one of each session
            s = calendar.session_on(day)
            minutes = s.minutes()
            for minute in [*minutes[:40], minutes[-1]]:
                clock.set(minute + timedelta(seconds=2))
                engine.run_tick(minute)
        ops.close()  # waits for the last close's snapshot
        for day in WEEK:  # SPY, the buy-and-hold reference, as `data fetch SPY` stores it
            market.insert_rows([("SPY", int(r[0]), *map(float, r[1:5]), int(r[5]))
                                for r in feed.session_bars("SPY", calendar.session_on(day))])
        yield engine, system, market
    finally:
        engine.close()
        system.close()
        market.close()


def test_a_week_of_snapshots_report_and_charts(week, tmp_path: Path, calendar) -> None:
    engine, system, market = week
    conn = system.conn
    acct = perf.history(conn, perf.ACCOUNT)
    assert [r["day"] for r in acct] == [d.isoformat() for d in WEEK]
    assert all(r["taken"] == "close" for r in acct)
    for algo_id in (1, 2):
        rows = perf.history(conn, algo_id)
        assert len(rows) == 5
        # the stored value is the engine's own figure at the close
        view = engine.algorithm_view(algo_id)
        assert rows[-1]["value"] == pytest.approx(view.value, abs=0.01)
    assert sum(r["trades"] for r in acct) > 0

    rep = {r["algo_id"]: r for r in report_rows(conn, "2024-06-01", "week")}
    assert set(rep) == {0, 1, 2} and all(r["period"] == "2024-W23" for r in rep.values())
    aapl = rep[1]  # counted from its capital, not from its first close
    assert aapl["start_value"] == pytest.approx(20_000)
    assert aapl["return_pct"] == pytest.approx((aapl["end_value"] / 20_000 - 1) * 100)
    assert aapl["trades"] == sum(r["trades"] for r in perf.history(conn, 1))

    out = write_report_files(conn, "2024-06-01", tmp_path / "rep", "week", market, calendar,
                             "SPY")
    assert out["days"] == 5 and out["benchmark_days"] == 5
    assert out["files"][-2:] == ["algo-1.png", "algo-2.png"]
    for name in ("account.png", "algorithms.png", "algo-1.png", "algo-2.png"):
        data = (tmp_path / "rep" / name).read_bytes()
        assert data[:8] == PNG and len(data) > 5_000
    rows = list(csv.reader((tmp_path / "rep" / "equity.csv").open()))
    assert rows[0] == ["day", "account", "SPY", "#1 Demo SMA AAPL", "#2 Demo SMA MSFT"]
    assert [r[0] for r in rows[1:]] == [d.isoformat() for d in WEEK]
    spy_close = market.bars_between("SPY", 0, 2**31)[-1][4]
    assert float(rows[-1][2]) == pytest.approx(spy_close)
    periods = list(csv.DictReader((tmp_path / "rep" / "periods.csv").open()))
    assert len(periods) == 3


@pytest.mark.parametrize("days", [0, 1, 2, 30])
def test_the_daily_chart_draws_for_any_history(tmp_path: Path, days: int) -> None:
    from app.ops.charts import day_png

    account = [((date(2024, 6, 3) + timedelta(days=i)).isoformat(), 100_000.0 + i)
               for i in range(days)]
    out = day_png(tmp_path / "d.png", "t", {"A": 1.0, "B": -2.0} if days else {}, account)
    assert out.read_bytes()[:8] == PNG


def _engine(tmp_path: Path, calendar, clock):
    market = MarketStore(tmp_path / "d" / "market.db", calendar)
    system = SystemStore(tmp_path / "d" / "system.db")
    feed = SyntheticFeed(market, clock, calendar, seed=42)
    broker = SimulatedBroker(system, market, clock, calendar=calendar)
    return Engine(mode="demo", system=system, market=market, broker=broker, feed=feed,
                  clock=clock, calendar=calendar, before_tick=feed.ensure_until)


def _close(engine) -> None:
    engine.close()
    engine.system.close()
    engine.market.close()


def test_a_missed_close_is_caught_up_and_a_fresh_start_invents_none(tmp_path: Path,
                                                                      calendar) -> None:
    settings = load_settings(tmp_path / "none.toml", env={
        "AUTOTRADER_DATA_DIR": str(tmp_path / "d"), "APCA_API_KEY_ID": ""})
    settings.data_path.mkdir(parents=True)
    tue = calendar.session_on(date(2024, 6, 4))
    # 1. a fresh start on Tuesday: the first tick runs before the start-up work does (a fast
    # demo); Monday had no trading here, so no Monday snapshot may appear
    clock = ManualClock(tue.open)
    engine = _engine(tmp_path, calendar, clock)
    engine.create_algorithm("sma_crossover", "AAPL", 10_000, name="A")
    ops = Operations(engine, settings)
    engine.start()
    for minute in tue.minutes()[:5]:
        clock.set(minute + timedelta(seconds=2))
        engine.run_tick(minute)
    ops._at_start()  # noqa: SLF001 - the start-up work, after those ticks
    assert perf.history(engine.system.conn, perf.ACCOUNT) == []
    _close(engine)
    # 2. the app was off at Tuesday's close, started again on Wednesday: Tuesday is caught up
    wed = calendar.session_on(date(2024, 6, 5))
    clock = ManualClock(wed.open)
    engine = _engine(tmp_path, calendar, clock)
    ops = Operations(engine, settings)
    engine.start()
    clock.set(wed.open + timedelta(seconds=2))
    engine.run_tick(wed.open)
    ops._at_start()  # noqa: SLF001
    rows = perf.history(engine.system.conn, perf.ACCOUNT)
    assert [(r["day"], r["taken"]) for r in rows] == [("2024-06-04", "startup")]
    _close(engine)


def test_the_close_work_thread_leaves_no_db_connection_open(tmp_path: Path, calendar) -> None:
    """The after-close work (snapshot, retention) runs on a thread of its own; when it ends,
    so do its system.db and market.db connections (they stayed open until another thread next
    opened one: two connections and fds held from one close to the next, seen in the soak)."""
    settings = load_settings(tmp_path / "none.toml", env={
        "AUTOTRADER_DATA_DIR": str(tmp_path / "d"), "APCA_API_KEY_ID": ""})
    settings.data_path.mkdir(parents=True)
    mon = calendar.session_on(WEEK[0])
    clock = ManualClock(mon.open)
    engine = _engine(tmp_path, calendar, clock)
    try:
        engine.create_algorithm("sma_crossover", "AAPL", 10_000, name="A")
        engine.start()
        for minute in (mon.minutes()[0], mon.minutes()[-1]):
            clock.set(minute + timedelta(seconds=2))
            engine.run_tick(minute)
        before = (engine.system.open_connections(), engine.market.open_connections())
        ops = Operations(engine, settings)
        ops.session_closed(mon.open.date())
        ops.close()  # waits for the close's thread
        assert perf.history(engine.system.conn, perf.ACCOUNT)  # it did its work on both DBs
        assert (engine.system.open_connections(), engine.market.open_connections()) == before
    finally:
        _close(engine)
