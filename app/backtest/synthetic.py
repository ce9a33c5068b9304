"""Seeded random-walk minute bars on real NYSE sessions, for tests, benchmarks and examples.

Prices have 4 decimals by default so moving averages of different lengths practically never
tie (cent prices make exact ties common, and engines disagree on ties).
"""

from __future__ import annotations

from datetime import date

import numpy as np

from app.backtest.bars import Bars
from db.calendar import MarketCalendar


def session_minutes(calendar: MarketCalendar, first: date, last: date) -> np.ndarray:
    """Epoch-second starts of every regular-session minute between two dates (inclusive)."""
    parts = [np.arange(int(s.open.timestamp()), int(s.close.timestamp()), 60, dtype=np.int64)
             for s in calendar.sessions_between(first, last)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def random_walk(ticker: str, calendar: MarketCalendar, first: date, last: date, *,
                seed: int = 7, start_price: float = 100.0, vol: float = 0.0008,
                decimals: int = 4) -> Bars:
    """Geometric random walk: each bar opens near the previous close."""
    ts = session_minutes(calendar, first, last)
    n = ts.shape[0]
    rng = np.random.default_rng(seed)
    close = start_price * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    gap = rng.normal(0.0, vol / 4, n)
    prev = np.concatenate(([start_price], close[:-1]))
    open_ = prev * np.exp(gap)
    wick = np.abs(rng.normal(0.0, vol / 2, (2, n)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    r = lambda a: np.round(a, decimals)  # noqa: E731
    o, c = r(open_), r(close)
    h = np.maximum(r(high), np.maximum(o, c))
    lo = np.minimum(r(low), np.minimum(o, c))
    v = rng.integers(100, 10_000, n).astype(np.float64)
    return Bars.from_arrays(ticker, ts, o, h, lo, c, v)
