"""UTC time helpers shared by the engine, the DBs and the UI.

All times inside AutoTrader are timezone-aware UTC datetimes; the DBs keep epoch seconds and
the seed's data functions speak ISO-8601 strings with a ``Z`` suffix at whole minutes.
"""

from __future__ import annotations

import functools
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


# Bounded to what ticks and backtests reuse (a few sessions of minutes, ~0.5 MB); 2**18
# entries reached ~53 MB in a long-running app.
@functools.lru_cache(maxsize=4096)
def _iso_epoch(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def iso_z(t: datetime | int | float) -> str:
    """``2024-01-31T19:59:00Z`` for an aware datetime or epoch seconds."""
    if isinstance(t, int | float):
        # Cached: the same minutes are formatted for every ticker and every tick.
        return _iso_epoch(int(t))
    return require_aware(t).strftime("%Y-%m-%dT%H:%M:%SZ")


def floor_minute(t: datetime) -> datetime:
    return require_aware(t).replace(second=0, microsecond=0)


def utcnow() -> datetime:
    return datetime.now(UTC)
