"""The NYSE calendar (exchange-calendars' XNYS) as fast epoch-second look-ups.

exchange-calendars knows holidays, early closes (e.g. 2024-11-29 closes 13:00 ET) and DST;
we read its schedule once into sorted arrays of session opens and closes so that "is the
market open at t" and "is this bar in the regular session" are a bisect, not a pandas call.
"""

from __future__ import annotations

import bisect
import functools
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from db.timeutil import from_epoch, require_aware

logger = logging.getLogger(__name__)

EXCHANGE_TZ = ZoneInfo("America/New_York")
REGULAR_SESSION_MINUTES = 390


@dataclass(frozen=True)
class Session:
    """One trading day: ``open`` and ``close`` are aware UTC datetimes; bars cover [open, close)."""

    day: date
    open: datetime
    close: datetime

    @property
    def is_early_close(self) -> bool:
        return (self.close - self.open) < timedelta(minutes=REGULAR_SESSION_MINUTES)

    def minutes(self) -> list[datetime]:
        """Start of every minute bar in the session, open first."""
        n = int((self.close - self.open).total_seconds() // 60)
        return [self.open + timedelta(minutes=i) for i in range(n)]

    def contains(self, t: datetime) -> bool:
        return self.open <= require_aware(t) < self.close


class MarketCalendar:
    def __init__(self, name: str = "XNYS", start: str = "2000-01-01") -> None:
        import exchange_calendars as xc  # heavy import: keep it off module import time

        cal = xc.get_calendar(name, start=start)
        sched = cal.schedule
        self.name = name
        self._days: list[date] = [d.date() for d in sched.index]
        self._opens: list[int] = [int(t.timestamp()) for t in sched["open"]]
        self._closes: list[int] = [int(t.timestamp()) for t in sched["close"]]
        self._day_index = {d: i for i, d in enumerate(self._days)}
        self.first_day, self.last_day = self._days[0], self._days[-1]

    # --- sessions -------------------------------------------------------------------------
    def _session(self, i: int) -> Session:
        return Session(self._days[i], from_epoch(self._opens[i]), from_epoch(self._closes[i]))

    def session_on(self, day: date) -> Session | None:
        """The session on ``day`` (an exchange-local date), or None for a weekend or holiday."""
        i = self._day_index.get(day)
        return None if i is None else self._session(i)

    def is_session(self, day: date) -> bool:
        return day in self._day_index

    def _check_range(self, ts: int) -> None:
        if ts < self._opens[0] - 86400 * 7 or ts > self._closes[-1] + 86400 * 7:
            raise ValueError(
                f"{from_epoch(ts).isoformat()} is outside the calendar's range "
                f"{self.first_day}..{self.last_day}"
            )

    def is_open(self, t: datetime) -> bool:
        """True when ``t`` is inside a regular session, [open, close)."""
        return self.is_open_epoch(int(require_aware(t).timestamp()))

    def is_open_epoch(self, ts: int) -> bool:
        i = bisect.bisect_right(self._opens, ts) - 1
        return i >= 0 and ts < self._closes[i]

    def session_bounds_epoch(self, ts: int) -> tuple[int, int] | None:
        """(open, close) epoch seconds of the session containing ``ts``, or None if closed."""
        i = bisect.bisect_right(self._opens, ts) - 1
        if i >= 0 and ts < self._closes[i]:
            return self._opens[i], self._closes[i]
        return None

    def session_at(self, t: datetime) -> Session | None:
        """The session in progress at ``t``, or None while closed."""
        ts = int(require_aware(t).timestamp())
        i = bisect.bisect_right(self._opens, ts) - 1
        if i >= 0 and ts < self._closes[i]:
            return self._session(i)
        return None

    def current_or_next_session(self, t: datetime) -> Session:
        """The session in progress at ``t``, else the next one to open."""
        ts = int(require_aware(t).timestamp())
        self._check_range(ts)
        i = bisect.bisect_right(self._closes, ts)  # first session whose close is after t
        if i >= len(self._days):
            raise ValueError(f"no session after {t.isoformat()} in the calendar")
        return self._session(i)

    def next_open(self, t: datetime) -> datetime:
        """The first session open strictly after ``t``."""
        ts = int(require_aware(t).timestamp())
        self._check_range(ts)
        i = bisect.bisect_right(self._opens, ts)
        if i >= len(self._days):
            raise ValueError(f"no session opens after {t.isoformat()} in the calendar")
        return from_epoch(self._opens[i])

    def next_close(self, t: datetime) -> datetime:
        """The close of the session in progress, or of the next session if closed."""
        return self.current_or_next_session(t).close

    def previous_session(self, t: datetime) -> Session:
        """The last session that closed at or before ``t``."""
        ts = int(require_aware(t).timestamp())
        i = bisect.bisect_right(self._closes, ts) - 1
        if i < 0:
            raise ValueError(f"no session closed before {t.isoformat()}")
        return self._session(i)

    def sessions_between(self, start: date, end: date) -> list[Session]:
        """Sessions with start <= day <= end (exchange-local dates)."""
        lo = bisect.bisect_left(self._days, start)
        hi = bisect.bisect_right(self._days, end)
        return [self._session(i) for i in range(lo, hi)]

    def sessions_before(self, t: datetime, n: int) -> list[Session]:
        """The ``n`` sessions that closed at or before ``t``, oldest first."""
        ts = int(require_aware(t).timestamp())
        hi = bisect.bisect_right(self._closes, ts)
        return [self._session(i) for i in range(max(0, hi - n), hi)]

    def session_minutes(self, day: date) -> list[datetime]:
        s = self.session_on(day)
        return [] if s is None else s.minutes()

    def minute_is_regular(self, ts: int) -> bool:
        """A bar starting at epoch ``ts`` lies in a regular session (same as ``is_open_epoch``)."""
        return self.is_open_epoch(ts)

    def regular_mask(self, timestamps: list[int]) -> list[bool]:
        """Vector form of ``minute_is_regular`` for bulk inserts."""
        opens, closes = self._opens, self._closes
        out = []
        for ts in timestamps:
            i = bisect.bisect_right(opens, ts) - 1
            out.append(i >= 0 and ts < closes[i])
        return out

    def minutes_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Regular-session minute starts in [start, end)."""
        start, end = require_aware(start), require_aware(end)
        out: list[datetime] = []
        local_start = start.astimezone(EXCHANGE_TZ).date() - timedelta(days=1)
        local_end = end.astimezone(EXCHANGE_TZ).date()
        for s in self.sessions_between(local_start, local_end):
            out.extend(m for m in s.minutes() if start <= m < end)
        return out


@functools.cache
def nyse() -> MarketCalendar:
    """The process-wide XNYS calendar (built once, ~0.1 s)."""
    return MarketCalendar("XNYS")


def exchange_time(t: datetime) -> datetime:
    """``t`` in New York time, for display."""
    return require_aware(t).astimezone(EXCHANGE_TZ)


__all__ = ["EXCHANGE_TZ", "MarketCalendar", "Session", "exchange_time", "nyse", "UTC"]
