"""Read-only summaries of the market DB for ``autotrader data list`` (SQL stays in db/)."""

from __future__ import annotations

import sqlite3


def stored_ranges(conn: sqlite3.Connection) -> list[tuple[str, int, int, int]]:
    """(ticker, first ts, last ts, bars) per ticker, by ticker."""
    return [tuple(r) for r in conn.execute(
        "SELECT ticker, MIN(ts), MAX(ts), COUNT(*) FROM bars GROUP BY ticker ORDER BY ticker")]


def bars_in(conn: sqlite3.Connection, ticker: str, lo: int, hi: int) -> int:
    """Bars of ``ticker`` with lo <= ts < hi (one index range)."""
    return int(conn.execute("SELECT COUNT(*) FROM bars WHERE ticker = ? AND ts >= ? AND ts < ?",
                            (ticker, lo, hi)).fetchone()[0])
