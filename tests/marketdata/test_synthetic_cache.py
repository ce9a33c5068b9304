"""The demo feed keeps a ticker's few latest sessions of bars, not a long LRU (issue 19: a
global LRU of 256 ticker-sessions grew the kiosk's memory for days before it levelled off)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from app.clock import WallClock
from app.marketdata import synthetic
from app.marketdata.synthetic import SyntheticFeed
from db.calendar import MarketCalendar
from db.market import MarketStore


def test_a_month_of_sessions_keeps_two_a_ticker_and_regenerates_the_same_bars(
        tmp_path: Path) -> None:
    cal = MarketCalendar()
    market = MarketStore(tmp_path / "market.db", cal)
    try:
        feed = SyntheticFeed(market, WallClock(), cal, seed=42)
        sessions = cal.sessions_between(date(2024, 3, 1), date(2024, 3, 29))
        first = {t: feed.session_bars(t, sessions[0]).copy() for t in ("AAPL", "SPY")}
        for s in sessions:
            for t in ("AAPL", "SPY", "MSFT"):
                feed.session_bars(t, s)
        held = {t: list(d) for t, d in feed._cache.items()}
        assert held == {t: [s.day for s in sessions[-synthetic.CACHED_SESSIONS:]]
                        for t in ("AAPL", "SPY", "MSFT")}
        # an evicted session comes back bar for bar (the walk is seeded by ticker and day)
        for t, bars in first.items():
            np.testing.assert_array_equal(feed.session_bars(t, sessions[0]), bars)
        # today's bars are served from the cache: the same array, not a new one
        assert feed.session_bars("AAPL", sessions[-1]) is feed.session_bars("AAPL", sessions[-1])
    finally:
        market.close()
