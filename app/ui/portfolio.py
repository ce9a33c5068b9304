"""Today's P&L for the header and the lock screen's strip, from the algorithms' views and the
daily performance snapshots the engine takes after each close (``db.performance``).

Today's P&L of an algorithm is its P&L now minus its P&L in the newest snapshot before today;
an algorithm with no earlier snapshot (created today, or before the first snapshot) counts
from zero. The percentage is against the algorithms' value at the day's start. Pure
functions: the worker thread reads the DB, the GUI only shows the two numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from db import performance as perf

LOOK_BACK_DAYS = 14  # a long weekend plus holidays still finds the last close's snapshot


def day_base(rows: Iterable[dict[str, Any]], day: str) -> dict[int, float]:
    """algo id -> its P&L in its newest snapshot strictly before ``day`` (ISO date)."""
    out: dict[int, tuple[str, float]] = {}
    for r in rows:
        algo_id, d = int(r["algo_id"]), str(r["day"])
        if algo_id == perf.ACCOUNT or d >= day:
            continue
        if algo_id not in out or d > out[algo_id][0]:
            out[algo_id] = (d, float(r["pnl"] or 0.0))
    return {k: v[1] for k, v in out.items()}


def today_figures(views: Iterable[dict[str, Any]], base: dict[int, float]) -> tuple[float, float]:
    """(today's P&L, the algorithms' value at the day's start)."""
    pnl = value = 0.0
    for v in views:
        if v.get("status") == "deleted" or v.get("pnl") is None or v.get("value") is None:
            continue
        today = float(v["pnl"]) - base.get(int(v["id"]), 0.0)
        pnl += today
        value += float(v["value"]) - today
    return pnl, value


class DayBase:
    """The snapshot look-up, cached until the day or the newest snapshot changes."""

    def __init__(self) -> None:
        self._key: tuple[str, str | None] = ("", None)
        self._base: dict[int, float] = {}

    def get(self, conn: Any, day: date) -> dict[int, float]:
        iso = day.isoformat()
        key = (iso, perf.last_day(conn))
        if key != self._key:
            since = (day - timedelta(days=LOOK_BACK_DAYS)).isoformat()
            self._base = day_base(perf.all_since(conn, since), iso)
            self._key = key
        return self._base
