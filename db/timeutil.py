"""UTC time helpers shared by the engine, the DBs and the UI.

All times inside AutoTrader are timezone-aware UTC datetimes; the DBs keep epoch seconds and
the seed's data functions speak ISO-8601 strings with a ``Z`` suffix at whole minutes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class NaiveDatetimeError(ValueError):
    """A datetime without a timezone reached code that cannot guess one."""


def require_aware(t: datetime, what: str = "time") -> datetime:
    if t.tzinfo is None or t.tzinfo.utcoffset(t) is None:
        raise NaiveDatetimeError(
            f"{what} {t.isoformat()} has no timezone; pass an aware datetime (e.g. UTC)"
        )
    return t.astimezone(UTC)


def to_epoch(t: datetime | str | int | float) -> int:
    """Epoch seconds of an aware datetime, an ISO string (``Z`` or offset) or a number."""
    if isinstance(t, bool):
        raise TypeError("a bool is not a time")
    if isinstance(t, int | float):
        return int(t)
    if isinstance(t, str):
        t = parse_iso(t)
    return int(require_aware(t).timestamp())


def parse_iso(s: str) -> datetime:
    """Parse an RFC-3339 / ISO-8601 timestamp; a string without offset is refused."""
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as e:
        raise ValueError(f"not an ISO-8601 timestamp: {s!r}") from e
    return require_aware(t, f"timestamp {s!r}")


def from_epoch(ts: int | float) -> datetime:
    return datetime.fromtimestamp(int(ts), tz=UTC)


# ISO strings of epoch seconds at a whole minute are a day's prefix ("2024-01-31T", one per
# day, bounded) plus one of the 1,440 minute-of-day suffixes ("19:59:00Z"): a dict hit, a list
# index and a concatenation, with no per-timestamp cache to thrash (an lru_cache of 2**18
# entries once reached ~53 MB in a long-running app; a smaller one missed on every
# historical read). The market DB's hot read (``last_n_bars``) inlines the same two lookups.
_DAY_PREFIX: dict[int, str] = {}
_DAY_PREFIX_MAX = 8192  # 22 years of days, ~0.8 MB; emptied when full
MINUTE_SUFFIX: tuple[str, ...] = tuple(f"{h:02d}:{m:02d}:00Z" for h in range(24) for m in range(60))
day_prefix_get = _DAY_PREFIX.get


def day_prefix(day: int) -> str:
    """``"YYYY-MM-DDT"`` of the UTC day ``day`` (epoch seconds // 86400), cached."""
    p = _DAY_PREFIX.get(day)
    if p is None:
        if len(_DAY_PREFIX) >= _DAY_PREFIX_MAX:
            _DAY_PREFIX.clear()
        p = _DAY_PREFIX[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
    return p


def _iso_epoch(ts: int) -> str:
    day, sec = divmod(ts, 86400)
    if sec % 60:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
    return day_prefix(day) + MINUTE_SUFFIX[sec // 60]


def iso_z(t: datetime | int | float) -> str:
    """``2024-01-31T19:59:00Z`` for an aware datetime or epoch seconds."""
    if isinstance(t, int | float):
        return _iso_epoch(int(t))
    return require_aware(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_minute(t: datetime) -> datetime:
    return require_aware(t).replace(second=0, microsecond=0)


def minute_epoch(t: datetime) -> int:
    """Epoch seconds of the start of the minute ``t`` falls in (a bar's ``ts``)."""
    return int(floor_minute(t).timestamp())


def utcnow() -> datetime:
    return datetime.now(UTC)
