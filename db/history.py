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


def tickers(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT ticker FROM bars ORDER BY ticker")]


def prune_ticker_before(conn: sqlite3.Connection, ticker: str, ts: int,
                        batch: int = 50_000) -> int:
    """Delete ``ticker``'s bars with ts < ``ts`` in short transactions (one primary-key range
    each, so the stream's writes wait at most one batch); returns how many."""
    total = 0
    while True:
        with conn:
            n = conn.execute(
                "DELETE FROM bars WHERE ticker = ? AND ts IN (SELECT ts FROM bars WHERE "
                "ticker = ? AND ts < ? ORDER BY ts LIMIT ?)", (ticker, ticker, ts, batch)
            ).rowcount
        total += n
        if n < batch:
            return total


def bars_of(conn: sqlite3.Connection, ticker: str, lo: int | None = None,
            hi: int | None = None) -> sqlite3.Cursor:
    """(ts, o, h, l, c, v) of ``ticker`` with lo <= ts < hi, oldest first (a cursor)."""
    return conn.execute(
        "SELECT ts, o, h, l, c, v FROM bars WHERE ticker = ? AND ts >= ? AND ts < ? ORDER BY ts",
        (ticker, lo if lo is not None else -(2**62), hi if hi is not None else 2**62))
