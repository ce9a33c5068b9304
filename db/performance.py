"""Daily performance snapshots (system DB table ``performance``, migration m005) and the
read-only queries the status page and the reports use. ``algo_id`` 0 is the account."""

from __future__ import annotations

import sqlite3
from typing import Any

ACCOUNT = 0
_COLS = ("day", "algo_id", "name", "ticker", "value", "pnl", "position", "cash", "trades",
         "status", "taken", "taken_at")


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def record_day(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> int:
    """Write one day's rows (replacing that day's earlier rows of the same algorithms) in one
    transaction; returns how many."""
    with conn:
        conn.executemany(
            f"INSERT OR REPLACE INTO performance ({', '.join(_COLS)}) "
            f"VALUES ({', '.join('?' for _ in _COLS)})",
            [tuple(r.get(c, "" if c in ("name", "ticker", "status") else 0) for c in _COLS)
             for r in rows])
    return len(rows)


def has_day(conn: sqlite3.Connection, day: str) -> bool:
    return conn.execute("SELECT 1 FROM performance WHERE day = ? AND algo_id = 0",
                        (day,)).fetchone() is not None


def last_day(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT MAX(day) FROM performance WHERE algo_id = 0").fetchone()
    return row[0] if row else None


def history(conn: sqlite3.Connection, algo_id: int, since: str = "",
            limit: int | None = None) -> list[dict[str, Any]]:
    """One algorithm's (or the account's) rows, oldest first; ``limit``: the newest n."""
    if limit is not None:
        return list(reversed(_rows(conn, "SELECT * FROM performance WHERE algo_id = ? AND "
                                   "day >= ? ORDER BY day DESC LIMIT ?",
                                   (algo_id, since, limit))))
    return _rows(conn, "SELECT * FROM performance WHERE algo_id = ? AND day >= ? ORDER BY day",
                 (algo_id, since))


def all_since(conn: sqlite3.Connection, since: str = "") -> list[dict[str, Any]]:
    return _rows(conn, "SELECT * FROM performance WHERE day >= ? ORDER BY algo_id, day",
                 (since,))


def before(conn: sqlite3.Connection, algo_id: int, day: str) -> dict[str, Any] | None:
    """The newest row of ``algo_id`` strictly before ``day`` (a period's starting value)."""
    rows = _rows(conn, "SELECT * FROM performance WHERE algo_id = ? AND day < ? "
                 "ORDER BY day DESC LIMIT 1", (algo_id, day))
    return rows[0] if rows else None


def trades_between(conn: sqlite3.Connection, lo_iso: str, hi_iso: str) -> dict[int, int]:
    """Fills per algorithm with lo <= timestamp < hi (ISO UTC strings)."""
    return {int(a): int(n) for a, n in conn.execute(
        "SELECT algo_id, COUNT(*) FROM transactions WHERE timestamp >= ? AND timestamp < ? "
        "GROUP BY algo_id", (lo_iso, hi_iso))}


def recent_orders(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The newest orders with their algorithm's name (the status page)."""
    return _rows(conn, "SELECT o.id, o.algo_id, a.name, o.ticker, o.side, o.qty, o.status, "
                 "o.filled_qty, o.filled_avg_price, o.reason, o.minute, o.updated_at "
                 "FROM orders o LEFT JOIN algorithms a ON a.id = o.algo_id "
                 "WHERE o.algo_id IS NOT NULL ORDER BY o.id DESC LIMIT ?", (limit,))
