"""The system DB: algorithms, orders, transactions and settings.

Money state is written here before anything shows it. Multi-step writes (an order's fill and
its transaction) go through ``atomic()`` so a kill between them leaves neither or both.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict, cast

import sqlite_utils

from db import connection
from db.connection import Store, last_rowid
from db.migrations import system_migrations
from db.timeutil import iso_z, utcnow

logger = logging.getLogger(__name__)

ALGO_STATUSES = ("running", "stopped", "error", "deleted")
# Order statuses after which nothing more happens to an order.
TERMINAL_ORDER_STATUSES = frozenset({"filled", "canceled", "expired", "rejected", "done_for_day"})
_TERMINAL_SQL = ", ".join(f"'{s}'" for s in sorted(TERMINAL_ORDER_STATUSES))


class Transaction(TypedDict):
    """One fill of one algorithm: a row of ``transactions``, as read back and as the order
    book returns a new one (money state between the DB, the order book, the ledgers and the
    engine's listeners). A dict at run time, so listeners and exports index it as before."""

    id: int
    algo_id: int
    order_id: int | None
    fill_id: NotRequired[str | None]  # not in ``transactions()`` (the plugins' view)
    ticker: str
    type: Literal["buy", "sell"]
    shares: int
    price: float
    commission: float
    timestamp: str  # ISO-8601 UTC ('...Z')


class OrderRow(TypedDict):
    """A row of ``orders``: an algorithm's order (``algo_id`` set; ``parent`` set when it was
    netted into one broker order) or a netted broker order (``algo_id`` None)."""

    id: int
    client_order_id: str
    algo_id: int | None
    ticker: str
    side: Literal["buy", "sell"]
    qty: int
    status: str
    broker_order_id: str | None
    filled_qty: int
    filled_avg_price: float | None
    reason: str | None
    minute: str
    created_at: str
    updated_at: str
    parent: str | None
    crossed_qty: int

_TX_COLUMNS = ", ".join(Transaction.__annotations__)
_SEED_TX_COLUMNS = ", ".join(c for c in Transaction.__annotations__ if c != "fill_id")


class SystemStore(Store):
    what = "system DB"

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        """``readonly``: a WAL reader (plugin worker processes); no migration, no writes."""
        self.path = path
        super().__init__(path, system_migrations, readonly)
        # Each algorithm's transactions read so far (committed rows, by id): see transactions().
        self._tx_seen: dict[int, list[Transaction]] = {}
        self._tx_lock = threading.Lock()

    @property
    def db(self) -> sqlite_utils.Database:
        return self._tl.db

    @contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        """One transaction (a savepoint when nested). The outermost takes the write lock when
        it begins (``BEGIN IMMEDIATE``): a deferred ``BEGIN`` starts as a reader, and when it
        then writes after another connection has (the tick, a fill from the trade stream, a
        stop from the control socket: each thread has its own connection) SQLite answers
        "database is locked" at once, without waiting out the busy timeout
        (sqlite.org/rescode.html#busy): 700 of 1,200 read-then-write transactions from 4
        threads failed that way. IMMEDIATE waits for the lock instead."""
        outer = not self.conn.in_transaction
        if outer and not self._tl.readonly:
            self.conn.execute("BEGIN IMMEDIATE")  # sqlite-utils' atomic() nests a savepoint
        try:
            with self.db.atomic() as d:
                yield d
            if outer and self.conn.in_transaction:
                self.conn.execute("COMMIT")
        except BaseException:
            # Also a COMMIT that failed (a full disk), which may leave the transaction open:
            # every later statement of this thread would join it and never be saved.
            if outer and self.conn.in_transaction:
                self.conn.rollback()
            raise

    @contextmanager
    def brief_lock_waits(self, ms: int) -> Iterator[None]:
        """This thread's writes wait at most ``ms`` for another connection's write lock
        (instead of ``BUSY_TIMEOUT_MS``): for callers that have somewhere else to put a write
        that cannot be made now (the panic button's held-back rows)."""
        conn = self.conn
        conn.execute(f"PRAGMA busy_timeout = {int(ms)}")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA busy_timeout = {connection.BUSY_TIMEOUT_MS}")

    def _rows(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()
              ) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    # --- settings ------------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def set_setting(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def delete_setting(self, key: str) -> None:
        self.conn.execute("DELETE FROM settings WHERE key = ?", (key,))

    # --- algorithms ----------------------------------------------------------------------
    def add_algorithm(self, plugin: str, ticker: str, initial_capital: float,
                      params: dict[str, Any] | None = None, name: str = "",
                      status: str = "running") -> int:
        if not initial_capital > 0:
            raise ValueError(f"initial capital must be positive, got {initial_capital}")
        cur = self.conn.execute(
            "INSERT INTO algorithms (name, plugin, ticker, initial_capital, params, status, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, plugin, ticker, float(initial_capital), json.dumps(params or {}), status,
             iso_z(utcnow())),
        )
        return last_rowid(cur)

    def _algo(self, row: dict[str, Any]) -> dict[str, Any]:
        row["params"] = json.loads(row["params"] or "{}")
        return row

    def get_algorithm(self, algo_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM algorithms WHERE id = ?", (algo_id,))
        return self._algo(rows[0]) if rows else None

    def list_algorithms(self, statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Algorithms (all but deleted ones by default), oldest first."""
        statuses = statuses or ("running", "stopped", "error")
        marks = ",".join("?" * len(statuses))
        return [self._algo(r) for r in self._rows(
            f"SELECT * FROM algorithms WHERE status IN ({marks}) ORDER BY id", tuple(statuses))]

    def set_algorithm_status(self, algo_id: int, status: str, error: str | None = None) -> None:
        if status not in ALGO_STATUSES:
            raise ValueError(f"unknown algorithm status {status!r}")
        now = iso_z(utcnow())
        self.conn.execute(
            "UPDATE algorithms SET status = ?, "
            "error = CASE WHEN ? IS NULL THEN error ELSE ? END, "
            "error_at = CASE WHEN ? IS NULL THEN error_at ELSE ? END, "
            "stopped_at = CASE WHEN ? IN ('stopped', 'deleted') THEN ? ELSE stopped_at END "
            "WHERE id = ?",
            (status, error, error, error, now, status, now, algo_id),
        )

    def set_algorithm_error(self, algo_id: int, error: str | None) -> None:
        """Record the algorithm's latest problem (shown on its card) without changing status."""
        self.conn.execute(
            "UPDATE algorithms SET error = ?, error_at = ? WHERE id = ?",
            (error, iso_z(utcnow()) if error else None, algo_id),
        )

    # --- transactions --------------------------------------------------------------------
    def transactions(self, algo_id: int) -> list[Transaction]:
        """One algorithm's transactions, oldest first (no ``fill_id``: plugins read these).

        Seed-style plugins call this every minute for the whole list. Rows are only ever
        added (nothing updates or deletes one; ids grow), so the rows already read are kept
        and each call reads only those after the last one: a year of fills costs a copy per
        minute, not a query of every row (it was 20% of a plugin worker's CPU). Each call
        returns new dicts in a new list, so a plugin that changes them changes only its copy.
        Rows read inside this connection's open write transaction may still be rolled back:
        they are returned but not kept."""
        with self._tx_lock:
            seen = self._tx_seen.get(algo_id)
            last = seen[-1]["id"] if seen else 0
        new = cast(list[Transaction], self._rows(
            f"SELECT {_SEED_TX_COLUMNS} FROM transactions WHERE algo_id = ? AND id > ? "
            "ORDER BY id", (algo_id, last)))
        if self.conn.in_transaction:
            with self._tx_lock:
                kept = [t.copy() for t in self._tx_seen.get(algo_id, ())
                        if t["id"] <= last]
            return kept + new
        with self._tx_lock:
            seen = self._tx_seen.setdefault(algo_id, [])
            top = seen[-1]["id"] if seen else 0
            seen.extend(t for t in new if t["id"] > top)  # another thread may have added some
            return [t.copy() for t in seen]

    def last_transaction_id(self) -> int:
        """The newest transaction's id (0 when there is none)."""
        return int(self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM transactions")
                   .fetchone()[0])

    def seed_transactions_upto(self, algo_id: int, upto_id: int) -> list[Transaction]:
        """One algorithm's transactions with ``id <= upto_id``, oldest first, as ``transactions``
        gives them (no ``fill_id``), read in full (a plugin worker's batch, once an algorithm)."""
        return cast(list[Transaction], self._rows(
            f"SELECT {_SEED_TX_COLUMNS} FROM transactions WHERE algo_id = ? AND id <= ? "
            "ORDER BY id", (algo_id, upto_id)))

    def seed_transactions_after(self, after_id: int) -> list[Transaction]:
        """Every algorithm's transactions with ``id > after_id``, oldest first (no
        ``fill_id``): what a plugin worker's next batch adds to the rows it has."""
        return cast(list[Transaction], self._rows(
            f"SELECT {_SEED_TX_COLUMNS} FROM transactions WHERE id > ? ORDER BY id",
            (after_id,)))

    def algos_with_splits(self) -> set[int]:
        """Algorithms with a split event that changed their shares (their seed view of
        transactions shows it as a buy or sell, db/corporate.py)."""
        return {int(r[0]) for r in self.conn.execute(
            "SELECT DISTINCT algo_id FROM algo_events WHERE type = 'split' AND shares != 0")}

    def tickers_traded_after(self, tx_id: int) -> set[str]:
        """Tickers with a transaction newer than ``tx_id``."""
        return {r[0] for r in self.conn.execute(
            "SELECT DISTINCT ticker FROM transactions WHERE id > ?", (tx_id,))}

    def all_transactions(self) -> list[Transaction]:
        return cast(list[Transaction], self._rows(
            f"SELECT {_TX_COLUMNS} FROM transactions ORDER BY id"))

    def add_transaction(self, algo_id: int, ticker: str, type_: str, shares: int, price: float,
                        timestamp: str, order_id: int | None = None, fill_id: str | None = None,
                        commission: float = 0.0) -> int | None:
        """Insert a fill; a repeated ``fill_id`` is ignored (returns None) so replays are safe."""
        cur = self.conn.execute(
            "INSERT OR IGNORE INTO transactions (algo_id, order_id, fill_id, ticker, type, "
            "shares, price, commission, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (algo_id, order_id, fill_id, ticker, type_, int(shares), float(price),
             float(commission), timestamp),
        )
        return last_rowid(cur) if cur.rowcount else None

    # --- orders --------------------------------------------------------------------------
    def insert_order(self, client_order_id: str, algo_id: int | None, ticker: str, side: str,
                     qty: int, minute: str, status: str = "intent") -> int:
        now = iso_z(utcnow())
        cur = self.conn.execute(
            "INSERT INTO orders (client_order_id, algo_id, ticker, side, qty, status, minute, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (client_order_id, algo_id, ticker, side, int(qty), status, minute, now, now),
        )
        return last_rowid(cur)

    def update_order(self, client_order_id: str, **fields: Any) -> None:
        allowed = {"status", "broker_order_id", "filled_qty", "filled_avg_price", "reason"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update order fields {sorted(bad)}")
        fields["updated_at"] = iso_z(utcnow())
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.conn.execute(f"UPDATE orders SET {sets} WHERE client_order_id = ?",
                          (*fields.values(), client_order_id))

    def update_child_order(self, order_id: int, status: str, filled_qty: int,
                           reason: str | None, updated_at: str) -> None:
        """A netted child order's share of its parent's fill (by row id; the reason is kept
        when ``reason`` is empty)."""
        self.conn.execute(
            "UPDATE orders SET status = ?, filled_qty = ?, reason = COALESCE(?, reason), "
            "updated_at = ? WHERE id = ?", (status, filled_qty, reason or None, updated_at, order_id))

    def warm_up(self) -> None:
        """Open this thread's connection and read the schema now (plugin workers at start)."""
        self.conn.execute("SELECT id FROM transactions LIMIT 1").fetchall()

    def get_order(self, client_order_id: str) -> OrderRow | None:
        rows = self._orders("WHERE client_order_id = ?", (client_order_id,))
        return rows[0] if rows else None

    def open_orders(self) -> list[OrderRow]:
        # Literal statuses (not parameters), so SQLite can use the partial index orders_open.
        return self._orders(f"WHERE status NOT IN ({_TERMINAL_SQL}) ORDER BY id")

    def orders_for(self, algo_id: int) -> list[OrderRow]:
        return self._orders("WHERE algo_id = ? ORDER BY id", (algo_id,))

    def _orders(self, where: str, params: tuple[Any, ...] = ()) -> list[OrderRow]:
        return cast(list[OrderRow], self._rows(f"SELECT * FROM orders {where}", params))

    # --- engine helpers (orders with netting, counts) ------------------------------------
    def insert_order_row(self, client_order_id: str, algo_id: int | None, ticker: str,
                         side: str, qty: int, minute: str, status: str = "intent", *,
                         parent: str | None = None, crossed_qty: int = 0, filled_qty: int = 0,
                         filled_avg_price: float | None = None,
                         reason: str | None = None) -> int:
        """Insert an order with the netting columns (``parent``, ``crossed_qty``) set.

        Raises ``sqlite3.IntegrityError`` for a client order id that already exists."""
        now = iso_z(utcnow())
        cur = self.conn.execute(
            "INSERT INTO orders (client_order_id, algo_id, ticker, side, qty, status, minute, "
            "created_at, updated_at, parent, crossed_qty, filled_qty, filled_avg_price, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (client_order_id, algo_id, ticker, side, int(qty), status, minute, now, now, parent,
             int(crossed_qty), int(filled_qty), filled_avg_price, reason),
        )
        return last_rowid(cur)

    def child_orders(self, parent: str) -> list[OrderRow]:
        """The algorithms' own order rows behind one netted broker order, oldest first."""
        return self._orders("WHERE parent = ? ORDER BY id", (parent,))

    def algorithm_count(self) -> int:
        """Algorithms ever created, deleted ones included."""
        return int(self.conn.execute("SELECT count(*) FROM algorithms").fetchone()[0])

    def positions_by_ticker(self) -> dict[str, int]:
        """Shares held per ticker summed over every algorithm (deleted ones included)."""
        rows = self.conn.execute(
            "SELECT ticker, SUM(CASE type WHEN 'buy' THEN shares ELSE -shares END) "
            "FROM transactions GROUP BY ticker"
        ).fetchall()
        # Splits add (or remove) whole shares outside the transactions (db/corporate.py).
        held = {t: int(q) for t, q in rows if q}
        from db.corporate import event_shares_by_ticker

        for t, q in event_shares_by_ticker(self.conn).items():
            held[t] = held.get(t, 0) + q
        return {t: q for t, q in held.items() if q}
