"""Deterministic minute bars for the emulator.

Every (ticker, minute) has one fixed bar, so the REST history and the live stream agree and a
test can compute exactly what the market DB must hold. Bars exist from 04:00 to 20:00 New York
time on trading days (like Alpaca's, pre-market and after-hours included), so our client's
regular-session filter is exercised.
"""

from __future__ import annotations

import math
import zlib
from datetime import date, datetime, time, timedelta

from db.calendar import EXCHANGE_TZ, MarketCalendar

EXT_OPEN = time(4, 0)
EXT_CLOSE = time(20, 0)


def base_price(ticker: str) -> float:
    return 20.0 + (zlib.crc32(ticker.encode()) % 4800) / 10.0


def price_at(ticker: str, ts: int) -> float:
    """A smooth but wiggly price path; the same for every caller."""
    x = ts / 60.0
    b = base_price(ticker)
    phase = (zlib.crc32(ticker.encode()) % 1000) / 159.0
    return b * (1.0 + 0.05 * math.sin(x / 977.0 + phase) + 0.01 * math.sin(x / 37.3 + phase)
                + 0.002 * math.sin(x * 1.618))


def bar_values(ticker: str, ts: int) -> tuple[float, float, float, float, int, int, float]:
    """(o, h, l, c, v, n, vw) for the minute starting at epoch ``ts``."""
    o = round(price_at(ticker, ts), 4)
    c = round(price_at(ticker, ts + 59), 4)
    h = round(max(o, c) * 1.0007, 4)
    low = round(min(o, c) * 0.9993, 4)
    v = 100 + int(abs(math.sin(ts * 0.37)) * 5000)
    n = v // 50 + 1
    vw = round((o + h + low + c) / 4.0, 4)
    return o, h, low, c, v, n, vw


def extended_minutes(calendar: MarketCalendar, start_ts: int, end_ts: int) -> list[int]:
    """Epoch starts of every 04:00-20:00 ET minute of trading days in [start_ts, end_ts)."""
    if end_ts <= start_ts:
        return []
    d0 = datetime.fromtimestamp(start_ts, EXCHANGE_TZ).date() - timedelta(days=1)
    d1 = datetime.fromtimestamp(end_ts, EXCHANGE_TZ).date()
    out: list[int] = []
    for s in calendar.sessions_between(d0, d1):
        lo, hi = _day_bounds(s.day)
        lo, hi = max(lo, start_ts + (-start_ts) % 60), min(hi, end_ts)
        out.extend(range(lo, hi, 60))
    return out


def _day_bounds(day: date) -> tuple[int, int]:
    lo = datetime.combine(day, EXT_OPEN, EXCHANGE_TZ)
    hi = datetime.combine(day, EXT_CLOSE, EXCHANGE_TZ)
    return int(lo.timestamp()), int(hi.timestamp())


def has_bar_minute(calendar: MarketCalendar, ts: int) -> bool:
    day = datetime.fromtimestamp(ts, EXCHANGE_TZ).date()
    if not calendar.is_session(day):
        return False
    lo, hi = _day_bounds(day)
    return lo <= ts < hi
