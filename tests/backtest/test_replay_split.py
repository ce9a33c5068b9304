"""A split in the middle of a replay (issue 11): ``run --replay DATE`` with ``[demo] splits``.

The replayed prices come from a market DB (one price basis). A split scheduled on the replay's
simulated market is replayed as Alpaca's raw bars show one (from the ex-date, prices / ratio),
and the engine applies it before the ex-date's first tick: the replay's history is rescaled
and charts and plugins see no cliff. Before, the replay fed the stored prices unchanged while
the engine still rescaled the history: a x10 cliff of its own making. Real engine, ReplayFeed,
simulated broker, SQLite files."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.backtest.synthetic import random_walk
from app.broker.simulated import SimulatedBroker
from app.clock import ManualClock
from app.config import load_settings
from app.engine.facade import Engine
from app.engine.runner import demo_splits
from app.marketdata.replay import ReplayFeed, ReplaySource
from db.market import MarketStore
from db.system import SystemStore

EX = date(2024, 6, 10)  # the replayed day is the ex-date; its history sessions are before it


@pytest.fixture
def source(tmp_path, calendar) -> MarketStore:
    m = MarketStore(tmp_path / "source.db", calendar)
    b = random_walk("NVDA", calendar, date(2024, 6, 3), EX, seed=7, start_price=1200.0,
                    vol=0.001, decimals=2)
    m.insert_rows([("NVDA", int(b.ts[i]), float(b.o[i]), float(b.h[i]), float(b.l[i]),
                    float(b.c[i]), int(b.v[i])) for i in range(len(b))])
    return m


def test_without_a_scheduled_split_the_replay_is_the_stored_day(tmp_path, calendar,
                                                                source) -> None:
    clock = ManualClock(calendar.session_on(EX).open)
    feed = ReplayFeed(MarketStore(tmp_path / "r.db", calendar), clock, calendar,
                      ReplaySource(EX, source.path))
    s = calendar.session_on(EX)
    stored = source.bars_between("NVDA", int(s.open.timestamp()), int(s.close.timestamp()))
    assert [tuple(r) for r in feed.session_bars("NVDA", s).tolist()] == [
        tuple(float(x) for x in r) for r in stored]


def test_a_split_scheduled_in_a_replay_is_applied_without_a_cliff(tmp_path, calendar,
                                                                  source) -> None:
    ex = calendar.session_on(EX)
    before = calendar.sessions_before(ex.open, 1)[0]
    settings = load_settings(path=tmp_path / "absent.toml", env={}, overrides={
        "mode": "demo", "data_dir": str(tmp_path / "data"), "demo.splits": ["NVDA:2024-06-10:10"]})
    market = MarketStore(tmp_path / "replay-market.db", calendar)
    system = SystemStore(tmp_path / "replay-system.db")
    splits = demo_splits(settings, system, market)
    clock = ManualClock(ex.open + timedelta(seconds=2))
    feed = ReplayFeed(market, clock, calendar, ReplaySource(EX, source.path), splits=splits)
    # Raw prices as Alpaca's would be: a tenth from the ex-date, the day before as stored.
    raw, stored = feed.session_bars("NVDA", ex), source.bars_between(
        "NVDA", int(ex.open.timestamp()), int(ex.close.timestamp()))
    assert raw[0, 4] == pytest.approx(stored[0][4] / 10) and raw[0, 5] == stored[0][5] * 10

    broker = SimulatedBroker(system, market, clock, calendar=calendar)
    engine = Engine(mode="demo", system=system, market=market, broker=broker, feed=feed,
                    clock=clock, calendar=calendar, before_tick=feed.ensure_until)
    try:
        engine.create_algorithm("sma_crossover", "NVDA", 20_000, name="Demo SMA NVDA")
        engine.start()
        for minute in ex.minutes()[:5]:
            clock.set(minute + timedelta(seconds=2))
            engine.run_tick(minute)
        rows = market.bars_between("NVDA", int(before.open.timestamp()),
                                   int(ex.open.timestamp()) + 300)
        assert len(rows) == 390 + 4  # a tick at minute m has the bars before m
        src = {r[0]: r for r in source.bars_between("NVDA", int(before.open.timestamp()),
                                                   int(ex.open.timestamp()) + 300)}
        for ts, o, h, low, c, _v in rows:  # one basis: the stored prices / 10, every minute
            s = src[ts]
            assert (o, h, low, c) == pytest.approx((s[1] / 10, s[2] / 10, s[3] / 10,
                                                    s[4] / 10), rel=1e-9), ts
        closes = [r[4] for r in rows]
        steps = [b / a for a, b in zip(closes, closes[1:], strict=False)]
        assert min(steps) > 0.9 and max(steps) < 1.1  # no cliff into the ex-date
        hist = market.last_n_rows("NVDA", 50, int(ex.open.timestamp()) + 300)
        assert max(r[4] for r in hist) < 1.2 * min(r[4] for r in hist)  # the plugin's view
    finally:
        engine.close()
        feed.stop()
        market.close()
        system.close()
