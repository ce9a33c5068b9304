"""The simulated broker's own tables in the system DB: its account, positions and orders
(``sim_account``, ``sim_positions``, ``sim_orders``; migrations.py creates them).

The simulated broker (app/broker/simulated.py) keeps its rules; this store only reads and
writes its rows. Multi-step writes run inside the caller's ``system.atomic()``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from db.system import SystemStore

OPEN_STATUSES = ("new", "accepted", "partially_filled")


def _dicts(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


class SimBrokerStore:
    def __init__(self, system: SystemStore) -> None:
        self.system = system

    def open_account(self, starting_cash: float, created_at: str) -> None:
        """The account, once: a later start keeps the cash it has."""
        self.system.conn.execute(
            "INSERT OR IGNORE INTO sim_account (id, cash, starting_cash, created_at) "
            "VALUES (1, ?, ?, ?)", (float(starting_cash), float(starting_cash), created_at))

    def cash(self) -> float:
        return float(self.system.conn.execute("SELECT cash FROM sim_account").fetchone()[0])

    def positions(self) -> dict[str, float]:
        rows = self.system.conn.execute("SELECT ticker, qty FROM sim_positions WHERE qty != 0")
        return {t: float(q) for t, q in rows}

    def position(self, ticker: str) -> int:
        row = self.system.conn.execute("SELECT qty FROM sim_positions WHERE ticker = ?",
                                       (ticker,)).fetchone()
        return int(row[0]) if row else 0

    def apply_fill(self, ticker: str, signed_qty: int, price: float, commission: float) -> None:
        """Cash and position after a fill (``signed_qty`` < 0 for a sale)."""
        c = self.system.conn
        c.execute("UPDATE sim_account SET cash = cash - ? - ?", (signed_qty * price, commission))
        c.execute("INSERT INTO sim_positions (ticker, qty) VALUES (?, ?) "
                  "ON CONFLICT(ticker) DO UPDATE SET qty = qty + excluded.qty",
                  (ticker, signed_qty))

    def order(self, client_order_id: str) -> dict[str, Any] | None:
        rows = _dicts(self.system.conn.execute(
            "SELECT * FROM sim_orders WHERE client_order_id = ?", (client_order_id,)))
        return rows[0] if rows else None

    def open_orders(self, statuses: Iterable[str] = OPEN_STATUSES) -> list[dict[str, Any]]:
        st = tuple(statuses)
        return _dicts(self.system.conn.execute(
            f"SELECT * FROM sim_orders WHERE status IN ({','.join('?' * len(st))}) "
            "ORDER BY rowid", st))

    def filled_since(self, ts: int) -> list[dict[str, Any]]:
        """Orders created at or after ``ts`` (epoch seconds) with shares filled, oldest first:
        a session's fills, read without turning every order ever made into a dict (the
        previous close's equity is worked out each session, for months)."""
        return _dicts(self.system.conn.execute(
            "SELECT * FROM sim_orders WHERE created_ts >= ? AND filled_qty > 0 "
            "AND status IN ('filled', 'partially_filled', 'canceled') ORDER BY rowid",
            (int(ts),)))

    def insert_order(self, row: dict[str, Any], updated_at: str) -> None:
        self.system.conn.execute(
            "INSERT INTO sim_orders (client_order_id, broker_order_id, ticker, side, qty, "
            "status, created_ts, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row["client_order_id"], row["broker_order_id"], row["ticker"], row["side"],
             row["qty"], row["status"], row["created_ts"], updated_at))

    def save_order(self, row: dict[str, Any], updated_at: str) -> None:
        self.system.conn.execute(
            "UPDATE sim_orders SET status = ?, filled_qty = ?, filled_avg_price = ?, reason = ?, "
            "updated_at = ? WHERE client_order_id = ?",
            (row["status"], row["filled_qty"], row["filled_avg_price"], row["reason"],
             updated_at, row["client_order_id"]))

    def rejected_orders(self) -> list[tuple[int, str]]:
        """(minute epoch, reason) of every order the simulated broker rejected, oldest first."""
        return [(int(ts), str(why)) for ts, why in self.system.conn.execute(
            "SELECT created_ts, reason FROM sim_orders WHERE status = 'rejected' "
            "ORDER BY rowid").fetchall()]
