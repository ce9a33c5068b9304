"""Corporate actions in the DBs: announced actions, what they did to each algorithm
(``algo_events``), split-adjusted bars, and the simulated broker's scheduled actions.

The engine (app/engine/corporate.py) decides; this module only reads and writes. Every
multi-row change runs inside the caller's ``atomic()`` block, so a kill mid-apply leaves the
DB as it was before or after, never between.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

from db.calendar import EXCHANGE_TZ
from db.connection import last_rowid
from db.market import MarketStore
from db.system import SystemStore
from db.timeutil import iso_z, utcnow

EVENT_TYPES = ("split", "cash_in_lieu", "dividend", "action")
SPLIT_KINDS = ("forward_split", "reverse_split")


def ex_epoch(ex_date: str) -> int:
    """Midnight at the exchange on the ex-date: every bar before it is pre-split."""
    d = date.fromisoformat(ex_date[:10])
    return int(datetime.combine(d, time(0, 0), EXCHANGE_TZ).timestamp())
_ACTION_COLS = ("id", "ticker", "kind", "ex_date", "record_date", "payable_date", "old_rate",
                "new_rate", "rate")


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


# --- announced actions (system DB) -----------------------------------------------------------
def save_actions(system: SystemStore, actions: Iterable[Mapping[str, Any]]) -> int:
    """Store announced actions (new ids only; an applied one is never changed). Returns how
    many were new."""
    now = iso_z(utcnow())
    n = 0
    with system.atomic():
        for a in actions:
            detail = json.dumps(a.get("detail") or {}, sort_keys=True, default=str)
            cur = system.conn.execute(
                "INSERT OR IGNORE INTO corporate_actions (id, ticker, kind, ex_date, "
                "record_date, payable_date, old_rate, new_rate, rate, detail, seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*(a.get(c) for c in _ACTION_COLS), detail, now))
            n += cur.rowcount
            if not cur.rowcount:  # a correction of an announcement not applied yet
                system.conn.execute(
                    "UPDATE corporate_actions SET ex_date = ?, record_date = ?, "
                    "payable_date = ?, old_rate = ?, new_rate = ?, rate = ?, detail = ? "
                    "WHERE id = ? AND applied_at IS NULL",
                    (a.get("ex_date"), a.get("record_date"), a.get("payable_date"),
                     a.get("old_rate"), a.get("new_rate"), a.get("rate"), detail, a["id"]))
    return n


def _action(row: dict[str, Any]) -> dict[str, Any]:
    row["detail"] = json.loads(row.get("detail") or "{}")
    return row


def due_actions(system: SystemStore, day: str) -> list[dict[str, Any]]:
    """Actions with ``ex_date <= day`` not applied yet, oldest first."""
    return [_action(r) for r in _rows(
        system.conn, "SELECT * FROM corporate_actions WHERE applied_at IS NULL "
        "AND ex_date <= ? ORDER BY ex_date, id", (day,))]


def actions(system: SystemStore, ticker: str | None = None) -> list[dict[str, Any]]:
    if ticker is None:
        return [_action(r) for r in _rows(
            system.conn, "SELECT * FROM corporate_actions ORDER BY ex_date, id")]
    return [_action(r) for r in _rows(
        system.conn, "SELECT * FROM corporate_actions WHERE ticker = ? ORDER BY ex_date, id",
        (ticker,))]


def mark_applied(system: SystemStore, action_id: str) -> None:
    system.conn.execute("UPDATE corporate_actions SET applied_at = ? WHERE id = ?",
                        (iso_z(utcnow()), action_id))


def is_applied(system: SystemStore, action_id: str) -> bool:
    row = system.conn.execute("SELECT applied_at FROM corporate_actions WHERE id = ?",
                              (action_id,)).fetchone()
    return bool(row and row[0])


# --- per-algorithm events ------------------------------------------------------------------
def max_transaction_id(system: SystemStore) -> int:
    row = system.conn.execute("SELECT max(id) FROM transactions").fetchone()
    return int(row[0] or 0)


def add_event(system: SystemStore, **ev: Any) -> int | None:
    """Insert one ``algo_events`` row; a repeat of (algo, action, type) is ignored (None)."""
    if ev.get("type") not in EVENT_TYPES:
        raise ValueError(f"unknown event type {ev.get('type')!r}")
    cols = ("algo_id", "action_id", "ticker", "type", "shares", "fraction", "cash", "price",
            "avg_cost", "old_rate", "new_rate", "shares_before", "shares_after", "note",
            "after_tx_id", "timestamp")
    vals = {"shares": 0, "fraction": 0.0, "cash": 0.0, "note": "", "after_tx_id": 0, **ev}
    cur = system.conn.execute(
        f"INSERT OR IGNORE INTO algo_events ({', '.join(cols)}) "
        f"VALUES ({', '.join('?' * len(cols))})", tuple(vals.get(c) for c in cols))
    return last_rowid(cur) if cur.rowcount else None


def events(system: SystemStore, algo_id: int | None = None) -> list[dict[str, Any]]:
    """``algo_events`` rows, oldest first (one algorithm's or all)."""
    if algo_id is None:
        return _rows(system.conn, "SELECT * FROM algo_events ORDER BY id")
    return _rows(system.conn, "SELECT * FROM algo_events WHERE algo_id = ? ORDER BY id",
                 (int(algo_id),))


def position_at(system: SystemStore, algo_id: int, before: str) -> tuple[int, int]:
    """(shares held from transactions before the ISO time ``before`` plus earlier events,
    number of transactions at or after it)."""
    held = system.conn.execute(
        "SELECT COALESCE(SUM(CASE type WHEN 'buy' THEN shares ELSE -shares END), 0) "
        "FROM transactions WHERE algo_id = ? AND timestamp < ?", (algo_id, before)).fetchone()[0]
    moved = system.conn.execute(
        "SELECT COALESCE(SUM(shares), 0) FROM algo_events WHERE algo_id = ?",
        (algo_id,)).fetchone()[0]
    later = system.conn.execute(
        "SELECT count(*) FROM transactions WHERE algo_id = ? AND timestamp >= ?",
        (algo_id, before)).fetchone()[0]
    return int(held) + int(moved), int(later)


def event_shares_by_ticker(conn: sqlite3.Connection) -> dict[str, int]:
    """Whole shares added (or removed) by splits, per ticker, over every algorithm."""
    return {t: int(q) for t, q in conn.execute(
        "SELECT ticker, SUM(shares) FROM algo_events GROUP BY ticker").fetchall() if q}


def seed_view(conn: sqlite3.Connection, algo_id: int,
              txs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The seed's ``get_transactions`` rows with each split shown as a buy (forward split) or
    sell (reverse split) of the share difference at price 0.0, marked ``'event': 'split'``,
    so a plugin adding up buys and sells gets the position right and its cash unchanged.
    Cash in lieu and dividends are left out (a plugin's own cash count then reads lower than
    the ledger's, never higher). Rows only ever come after the ones already returned."""
    evs = conn.execute(
        "SELECT ticker, shares, old_rate, new_rate, after_tx_id, timestamp FROM algo_events "
        "WHERE algo_id = ? AND type = 'split' AND shares != 0 ORDER BY id",
        (int(algo_id),)).fetchall()
    if not evs:
        return txs
    out: list[dict[str, Any]] = []
    i = 0
    for ticker, shares, old, new, after, ts in evs:
        while i < len(txs) and txs[i]["id"] <= after:
            out.append(txs[i])
            i += 1
        out.append({"id": None, "algo_id": int(algo_id), "order_id": None, "ticker": ticker,
                    "type": "buy" if shares > 0 else "sell", "shares": abs(int(shares)),
                    "price": 0.0, "commission": 0.0, "timestamp": ts, "event": "split",
                    "split": f"{new:g}:{old:g}"})
    out.extend(txs[i:])
    return out


# --- bars (market DB) ------------------------------------------------------------------------
def split_applied_to_bars(market: MarketStore, action_id: str) -> bool:
    return market.conn.execute("SELECT 1 FROM applied_splits WHERE action_id = ?",
                               (action_id,)).fetchone() is not None


def adjust_bars(market: MarketStore, action_id: str, ticker: str, ex_ts: int,
                factor: float) -> int:
    """Scale the stored bars of ``ticker`` before ``ex_ts`` by ``factor`` (prices; volume by
    its inverse) and record it, in one transaction; a second call for the same action does
    nothing (returns -1). Returns the bars changed."""
    db = market._tl.db
    with db.atomic():
        if split_applied_to_bars(market, action_id):
            return -1
        cur = db.conn.execute(
            "UPDATE bars SET o = o * ?1, h = h * ?1, l = l * ?1, c = c * ?1, "
            "vw = CASE WHEN vw IS NULL THEN NULL ELSE vw * ?1 END, "
            "v = CAST(ROUND(v / ?1) AS INTEGER) WHERE ticker = ?2 AND ts < ?3",
            (float(factor), ticker, int(ex_ts)))
        db.conn.execute(
            "INSERT INTO applied_splits (action_id, ticker, ex_ts, factor, applied_at) "
            "VALUES (?, ?, ?, ?, ?)", (action_id, ticker, int(ex_ts), float(factor),
                                       iso_z(utcnow())))
        return cur.rowcount


def bar_factors(conn: sqlite3.Connection) -> dict[str, list[tuple[int, float]]]:
    """ticker -> [(ex_ts, factor)] of the splits applied to the stored bars."""
    out: dict[str, list[tuple[int, float]]] = {}
    for t, ex_ts, f in conn.execute("SELECT ticker, ex_ts, factor FROM applied_splits"):
        out.setdefault(t, []).append((int(ex_ts), float(f)))
    return out


def scale_rows(rows: Iterable[Sequence[Any]],
               factors: dict[str, list[tuple[int, float]]]) -> list[Sequence[Any]]:
    """Rows (ticker, ts, o, h, l, c, v) of a minute before an applied split, scaled like the
    stored ones (a backfill of old minutes after the split was applied)."""
    out: list[Sequence[Any]] = []
    for r in rows:
        f = 1.0
        for ex_ts, k in factors.get(r[0], ()):
            if r[1] < ex_ts:
                f *= k
        if f == 1.0:
            out.append(r)
        else:
            out.append((r[0], r[1], r[2] * f, r[3] * f, r[4] * f, r[5] * f,
                        int(round(r[6] / f)), *r[7:]))
    return out


# --- the simulated broker's side -------------------------------------------------------------
def sim_schedule(system: SystemStore, action: Mapping[str, Any]) -> None:
    system.conn.execute(
        "INSERT OR REPLACE INTO sim_corporate_actions (id, ticker, kind, ex_date, old_rate, "
        "new_rate, rate, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (action["id"], action["ticker"], action["kind"], action["ex_date"],
         action.get("old_rate"), action.get("new_rate"), action.get("rate"),
         json.dumps(action.get("detail") or {}, sort_keys=True)))


def sim_actions(system: SystemStore, start: str, end: str,
                tickers: Iterable[str] | None = None) -> list[dict[str, Any]]:
    rows = [_action(r) for r in _rows(
        system.conn, "SELECT * FROM sim_corporate_actions WHERE ex_date >= ? AND ex_date <= ? "
        "ORDER BY ex_date, id", (start, end))]
    if tickers is not None:
        want = set(tickers)
        rows = [r for r in rows if r["ticker"] in want]
    return rows


def _sim_unsettled_qty(system: SystemStore, action_id: str, ticker: str) -> int | None:
    """Inside ``system.atomic()``: the simulated position in ``ticker`` if the action is still
    to settle, None if it is unknown or settled already."""
    row = system.conn.execute("SELECT settled_at FROM sim_corporate_actions WHERE id = ?",
                              (action_id,)).fetchone()
    if row is None or row[0]:
        return None
    q = system.conn.execute("SELECT qty FROM sim_positions WHERE ticker = ?",
                            (ticker,)).fetchone()
    return int(q[0]) if q and q[0] else 0


def _sim_mark_settled(system: SystemStore, action_id: str) -> None:
    system.conn.execute("UPDATE sim_corporate_actions SET settled_at = ? WHERE id = ?",
                        (iso_z(utcnow()), action_id))


def sim_settle_split(system: SystemStore, action_id: str, ticker: str, ratio: float,
                     price: float | None) -> bool:
    """The simulated broker splits its own position (whole shares; cash in lieu of the
    fraction at ``price`` per post-split share), once. Returns True if it did now."""
    with system.atomic():
        held = _sim_unsettled_qty(system, action_id, ticker)
        if held is None:
            return False
        if held:
            exact = held * ratio
            whole = int(exact + 1e-9)
            system.conn.execute("UPDATE sim_positions SET qty = ? WHERE ticker = ?",
                                (whole, ticker))
            if exact - whole > 1e-9 and price:
                system.conn.execute("UPDATE sim_account SET cash = cash + ? WHERE id = 1",
                                    ((exact - whole) * price,))
        _sim_mark_settled(system, action_id)
        return True


def sim_settle_dividend(system: SystemStore, action_id: str, ticker: str,
                        rate: float) -> bool:
    """The simulated broker pays a cash dividend on its own long position, once. Returns True
    if it did now."""
    with system.atomic():
        held = _sim_unsettled_qty(system, action_id, ticker)
        if held is None:
            return False
        if held > 0:
            system.conn.execute("UPDATE sim_account SET cash = cash + ? WHERE id = 1",
                                (held * rate,))
        _sim_mark_settled(system, action_id)
        return True
