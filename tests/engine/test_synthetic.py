"""The synthetic market: deterministic, shaped like a trading day, written as time passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from app.clock import ManualClock
from app.marketdata.synthetic import SyntheticFeed
from db.market import MarketStore

OPEN = datetime(2024, 6, 4, 13, 30, tzinfo=UTC)


def test_same_seed_same_bars_other_seed_other_bars(tmp_path, calendar):
    s = calendar.session_on(OPEN.date())
    clock = ManualClock(OPEN)
    a = SyntheticFeed(MarketStore(tmp_path / "a.db", calendar), clock, calendar, seed=7)
    b = SyntheticFeed(MarketStore(tmp_path / "b.db", calendar), clock, calendar, seed=7)
    c = SyntheticFeed(MarketStore(tmp_path / "c.db", calendar), clock, calendar, seed=8)
    assert np.array_equal(a.session_bars("AAPL", s), b.session_bars("AAPL", s))
    assert not np.array_equal(a.session_bars("AAPL", s), c.session_bars("AAPL", s))
    assert not np.array_equal(a.session_bars("AAPL", s)[:, 4], a.session_bars("MSFT", s)[:, 4])


def test_bars_are_valid_and_the_day_is_u_shaped(calendar, market_store):
    feed = SyntheticFeed(market_store, ManualClock(OPEN), calendar, seed=42)
    moves, volumes = [], []
    for s in calendar.sessions_between(OPEN.date() - timedelta(days=60), OPEN.date()):
        bars = feed.session_bars("NVDA", s)
        ts, o, h, lo, c, v = bars.T
        assert len(bars) == 390 and np.all(np.diff(ts) == 60)
        assert np.all(h >= np.maximum(o, c)) and np.all(lo <= np.minimum(o, c))
        assert np.all(lo > 0) and np.all(v > 0)
        moves.append(np.abs(np.diff(np.log(c))))
        volumes.append(v)
    m, vol = np.mean(moves, axis=0), np.mean(volumes, axis=0)
    open_, mid, close = m[:30].mean(), m[180:210].mean(), m[-30:].mean()
    assert open_ > 1.5 * mid and close > 1.5 * mid
    assert vol[:30].mean() > 1.5 * vol[180:210].mean() < vol[-30:].mean() / 1.5


def test_consecutive_sessions_join_up(calendar, market_store):
    feed = SyntheticFeed(market_store, ManualClock(OPEN), calendar, seed=42)
    days = calendar.sessions_between(OPEN.date() - timedelta(days=30), OPEN.date())
    for prev, nxt in zip(days, days[1:], strict=False):
        gap = feed.session_bars("AAPL", nxt)[0, 1] / feed.session_bars("AAPL", prev)[-1, 4]
        assert abs(gap - 1) < 0.015


def test_prepare_writes_history_and_bars_appear_as_the_clock_passes(calendar, market_store):
    clock = ManualClock(OPEN + timedelta(minutes=10, seconds=5))
    feed = SyntheticFeed(market_store, clock, calendar, seed=42)
    heard = []
    feed.add_bar_listener(heard.append)
    feed.prepare("AAPL")
    feed.subscribe("AAPL")
    ten = int((OPEN + timedelta(minutes=10)).timestamp())
    # Three previous sessions plus the ten complete minutes of today, none beyond.
    assert market_store.count("AAPL") == 3 * 390 + 10
    assert market_store.latest_ts("AAPL") == ten - 60
    assert len(market_store.last_n_rows("AAPL", 51, int(OPEN.timestamp()))) == 51
    clock.advance(minutes=1)
    new = feed.ensure_until(clock.now())
    assert [b.ts for b in new] == [ten] and heard == new
    assert market_store.latest_ts("AAPL") == ten
    # The stored bars are exactly the generated session.
    s = calendar.session_on(OPEN.date())
    gen = feed.session_bars("AAPL", s)[:11]
    stored = market_store.bars_between("AAPL", int(OPEN.timestamp()), ten + 60)
    assert [r[4] for r in stored] == list(gen[:, 4])
    # Over the weekend and into Monday: only session minutes are written.
    clock.set(datetime(2024, 6, 10, 13, 35, tzinfo=UTC))
    feed.ensure_until(clock.now())
    assert market_store.latest_ts("AAPL") == int(datetime(2024, 6, 10, 13, 34,
                                                          tzinfo=UTC).timestamp())
    for ts, *_ in market_store.bars_between("AAPL", ten, 2**40):
        assert calendar.is_open_epoch(ts)
    feed.unsubscribe("AAPL")
    clock.advance(minutes=5)
    assert feed.ensure_until(clock.now()) == []


def test_a_raising_bar_listener_is_logged_and_the_next_still_hears(calendar, market_store,
                                                                   caplog):
    clock = ManualClock(OPEN + timedelta(minutes=10, seconds=5))
    feed = SyntheticFeed(market_store, clock, calendar, seed=42)
    heard = []

    def broken(bar):
        raise RuntimeError("listener bug")

    feed.add_bar_listener(broken)
    feed.add_bar_listener(heard.append)
    feed.subscribe("AAPL")
    clock.advance(minutes=2)
    new = feed.ensure_until(clock.now())
    assert len(new) == 2 and heard == new
    assert market_store.latest_ts("AAPL") == new[-1].ts  # stored before anyone was told
    failed = [r for r in caplog.records if "bar listener" in r.getMessage()]
    assert len(failed) == 2 and all("broken" in r.getMessage() for r in failed)
