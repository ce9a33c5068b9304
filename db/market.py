"""The market DB: regular-session minute bars keyed by (ticker, epoch seconds)."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from db.calendar import MarketCalendar, nyse
from db.connection import StorageError, Store
from db.migrations import market_migrations
from db.timeutil import MINUTE_SUFFIX, day_prefix, day_prefix_get, iso_z, require_aware, to_epoch

logger = logging.getLogger(__name__)

TICKER_RE = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
BarRow = tuple[str, int, float, float, float, float, int]  # ticker, ts, o, h, l, c, v
OhlcvRow = tuple[int, float, float, float, float, int]  # ts, o, h, l, c, v (one ticker's)


class BadTickerError(ValueError):
    pass


def check_ticker(ticker: str) -> str:
    """Return the ticker if it looks like a US equity symbol, else raise a clear error."""
    if not isinstance(ticker, str) or not TICKER_RE.match(ticker):
        raise BadTickerError(
            f"{ticker!r} is not a ticker symbol (1-10 upper-case letters, digits or '.', "
            "starting with a letter)"
        )
    return ticker


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute bar; ``ts`` is the minute's start in epoch seconds (UTC)."""

    ticker: str
    ts: int
    o: float
    h: float
    l: float  # noqa: E741 - the protocol's name
    c: float
    v: int = 0

    @property
    def timestamp(self) -> str:
        return iso_z(self.ts)

    def as_row(self) -> BarRow:
        return (self.ticker, self.ts, self.o, self.h, self.l, self.c, self.v)

    def as_seed(self) -> dict[str, Any]:
        return {"timestamp": iso_z(self.ts),
                "ohlcv": {"o": self.o, "h": self.h, "l": self.l, "c": self.c, "v": self.v}}


MAX_PRICE = 1e9  # above any real share price; also rejects inf (NaN fails every comparison)


def _clean_rows(rows: Iterable[Sequence[Any]],
                calendar: MarketCalendar | None) -> list[Sequence[Any]]:
    """Rows at a whole minute with positive finite prices (and in a regular session when a
    calendar is given). A hot loop: bulk inserts run through it at ~1 us a row."""
    out: list[Sequence[Any]] = []
    append = out.append
    lo = hi = 0  # bounds of the last session seen: most rows fall in it, so no bisect
    for r in rows:
        try:
            ts = r[1]
            if not (ts % 60 == 0 and 0 < r[2] < MAX_PRICE and 0 < r[3] < MAX_PRICE
                    and 0 < r[4] < MAX_PRICE and 0 < r[5] < MAX_PRICE and r[6] >= 0):
                continue
        except (TypeError, IndexError):
            continue
        if calendar is not None and not lo <= ts < hi:
            bounds = calendar.session_bounds_epoch(ts)
            if bounds is None:
                continue
            lo, hi = bounds
        append(r)
    return out


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the write lock when it begins (``BEGIN IMMEDIATE``).

    A plain ``BEGIN`` starts as a reader: its first SELECT (the split factors) pins a snapshot,
    and when the INSERT then upgrades it to a writer after another connection has written (the
    stream's writer and the gap filler run on two threads, two connections) SQLite answers
    "database is locked" at once, without waiting out the busy timeout
    (sqlite.org/rescode.html#busy; simonwillison.net/2025/Feb/17/sqlite-busy): 482 of 1,200
    inserts from 4 threads failed that way, and the paper soak's gap filler lost a batch of 15
    tickers. ``BEGIN IMMEDIATE`` waits for the lock under the busy timeout instead."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class MarketStore(Store):
    """Minute bars for every ticker. Thread-safe: each thread gets its own connection."""

    what = "market DB"

    def __init__(self, path: str | Path, calendar: MarketCalendar | None = None,
                 readonly: bool = False) -> None:
        """``readonly``: a WAL reader (plugin worker processes); no migration, no writes."""
        self.path = Path(path) if str(path) != ":memory:" else path
        self.calendar = calendar or nyse()
        super().__init__(path, market_migrations, readonly)

    # --- writes --------------------------------------------------------------------------
    def insert_rows(self, rows: Iterable[Sequence[Any]], *, filter_session: bool = True) -> int:
        """Upsert (ticker, ts, o, h, l, c, v) rows in one transaction; return rows kept.

        Rows outside the regular session, not at a whole minute, or with non-positive or
        non-finite prices are dropped (logged). A bar for a stored (ticker, ts) replaces it:
        a late correction wins.
        """
        rows = rows if isinstance(rows, list) else list(rows)
        kept = _clean_rows(rows, self.calendar if filter_session else None)
        dropped = len(rows) - len(kept)
        if dropped:
            logger.debug("dropped %d of %d bars (outside session or invalid)", dropped, len(rows))
        if not kept:
            return 0
        db = self._tl.writer_db  # the page cache a batch of 100 tickers needs (connection.py)
        try:
            if db.conn.in_transaction:  # inside a caller's transaction (a split): a savepoint
                with db.atomic():
                    kept = self._write(db.conn, kept)
            else:
                with _immediate(db.conn):
                    kept = self._write(db.conn, kept)
        except sqlite3.OperationalError as e:
            raise StorageError(f"cannot write bars to {self.path}: {e}") from None
        return len(kept)

    @staticmethod
    def _write(conn: sqlite3.Connection, kept: list[Sequence[Any]]) -> list[Sequence[Any]]:
        # Minutes before a split already applied to the stored bars are scaled the same way
        # (a backfill of old minutes); read inside the write transaction.
        from db.corporate import bar_factors, scale_rows

        factors = bar_factors(conn)
        if factors:
            kept = scale_rows(kept, factors)
        conn.executemany(
            "INSERT OR REPLACE INTO bars (ticker, ts, o, h, l, c, v) VALUES (?, ?, ?, ?, ?, ?, ?)",
            kept,
        )
        return kept

    def insert_bars(self, bars: Iterable[Bar]) -> int:
        return self.insert_rows(b.as_row() for b in bars)

    # --- reads ---------------------------------------------------------------------------
    def last_n_rows(self, ticker: str, n: int, before_ts: int) -> list[OhlcvRow]:
        """(ts, o, h, l, c, v) of the ``n`` bars strictly before ``before_ts``, oldest first."""
        if n < 0:
            raise ValueError(f"n must be zero or more, got {n}")
        rows = self.conn.execute(
            "SELECT ts, o, h, l, c, v FROM bars WHERE ticker = ? AND ts < ? "
            "ORDER BY ts DESC LIMIT ?",
            (ticker, before_ts, n),
        ).fetchall()
        rows.reverse()
        return rows

    def warm_up(self) -> None:
        """Open this thread's connection and read the schema and the index's first page now,
        so a later first query does not pay for it (plugin workers at start)."""
        self.conn.execute("SELECT ts FROM bars ORDER BY ticker, ts LIMIT 1").fetchall()

    def bar_span(self, ticker: str) -> tuple[int, int, int] | None:
        """(first ts, last ts, bar count) of ``ticker``'s bars, None if it has none."""
        row = self.conn.execute("SELECT min(ts), max(ts), count(*) FROM bars WHERE ticker = ?",
                                (ticker,)).fetchone()
        return (int(row[0]), int(row[1]), int(row[2])) if row and row[2] else None

    def last_n_closes(self, ticker: str, n: int, before_ts: int) -> list[float]:
        """Closes of the last ``n`` bars strictly before ``before_ts``, oldest first."""
        rows = self.conn.execute(
            "SELECT c FROM bars WHERE ticker = ? AND ts < ? ORDER BY ts DESC LIMIT ?",
            (ticker, before_ts, n)).fetchall()
        return [r[0] for r in reversed(rows)]

    def last_n_bars(self, ticker: str, n: int, before: datetime | int) -> list[dict[str, Any]]:
        """Seed shape: ``[{'timestamp': ..Z, 'ohlcv': {o,h,l,c,v}}]`` oldest first."""
        check_ticker(ticker)
        if n < 0:
            raise ValueError(f"n must be zero or more, got {n}")
        before_ts = before if isinstance(before, int) else int(require_aware(before).timestamp())
        # The hot path of every seed-style plugin call (issue 15: p99 <= 2x the bare query).
        # The ISO string is the day's cached prefix plus the minute's suffix (every stored
        # bar is at a whole minute: ``_clean_rows`` is the only way in), so a read of any
        # history costs the same as one of today's minutes; dicts from constant layouts.
        rows = self.conn.execute(
            "SELECT ts, o, h, l, c, v FROM bars WHERE ticker = ? AND ts < ? "
            "ORDER BY ts DESC LIMIT ?", (ticker, before_ts, n)).fetchall()
        dp, hm = day_prefix_get, MINUTE_SUFFIX
        out = [
            {"timestamp": (dp(ts // 86400) or day_prefix(ts // 86400)) + hm[ts % 86400 // 60],
             "ohlcv": {"o": o, "h": h, "l": lo, "c": c, "v": v}}
            for ts, o, h, lo, c, v in rows
        ]
        out.reverse()
        return out

    def latest_price(self, ticker: str, before_ts: int | None = None) -> float | None:
        """Close of the newest bar (strictly before ``before_ts`` if given), None if none."""
        if before_ts is None:
            row = self.conn.execute(
                "SELECT c FROM bars WHERE ticker = ? ORDER BY ts DESC LIMIT 1", (ticker,)
            ).fetchone()
        else:
            row = self.conn.execute(
                "SELECT c FROM bars WHERE ticker = ? AND ts < ? ORDER BY ts DESC LIMIT 1",
                (ticker, before_ts),
            ).fetchone()
        return None if row is None else row[0]

    _PRICES_SQL = ("SELECT j.value, (SELECT c FROM bars WHERE ticker = j.value AND ts < ?1 "
                   "ORDER BY ts DESC LIMIT 1) FROM json_each(?2) AS j")

    def latest_prices(self, tickers: Iterable[str], before_ts: int) -> dict[str, float | None]:
        """``latest_price(t, before_ts)`` of each ticker in one query (json_each over the
        tickers, a correlated LIMIT 1 each): a hundred tickers cost 0.25 ms instead of 0.9 ms,
        most of it the Python side of a hundred statements. Ticker by ticker where SQLite has
        no JSON functions."""
        names = sorted(set(tickers))
        if len(names) > 1:
            try:
                got = dict(self.conn.execute(self._PRICES_SQL,
                                             (before_ts, json.dumps(names))).fetchall())
            except sqlite3.OperationalError:  # an SQLite built without JSON functions
                pass
            else:
                return {t: got.get(t) for t in names}
        return {t: self.latest_price(t, before_ts=before_ts) for t in names}

    def latest_ts(self, ticker: str) -> int | None:
        row = self.conn.execute(
            "SELECT ts FROM bars WHERE ticker = ? ORDER BY ts DESC LIMIT 1", (ticker,)
        ).fetchone()
        return None if row is None else row[0]

    def bars_between(self, ticker: str, start_ts: int, end_ts: int) -> list[OhlcvRow]:
        """(ts, o, h, l, c, v) with start_ts <= ts < end_ts, oldest first."""
        return self.conn.execute(
            "SELECT ts, o, h, l, c, v FROM bars WHERE ticker = ? AND ts >= ? AND ts < ? "
            "ORDER BY ts",
            (ticker, start_ts, end_ts),
        ).fetchall()

    def count(self, ticker: str | None = None) -> int:
        n: int
        if ticker is None:
            n = self.conn.execute("SELECT count(*) FROM bars").fetchone()[0]
        else:
            n = self.conn.execute("SELECT count(*) FROM bars WHERE ticker = ?",
                                  (ticker,)).fetchone()[0]
        return n

    def tickers(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT ticker FROM bars ORDER BY ticker")]


def to_row(ticker: str, bar: Any) -> BarRow:
    """Normalise one bar in any shape we meet into a row.

    Accepts the seed shape ``{'timestamp', 'ohlcv': {o,h,l,c,v}}``, Alpaca's
    ``{'t', 'o', 'h', 'l', 'c', 'v'}``, a ``Bar``, or a (ts, o, h, l, c, v) tuple.
    """
    if isinstance(bar, Bar):
        return bar.as_row()
    if isinstance(bar, dict):
        if "ohlcv" in bar:
            x = bar["ohlcv"]
            return (ticker, to_epoch(bar["timestamp"]), float(x["o"]), float(x["h"]),
                    float(x["l"]), float(x["c"]), int(x.get("v", 0) or 0))
        t: Any = bar.get("t", bar.get("timestamp"))
        return (ticker, to_epoch(t), float(bar["o"]), float(bar["h"]), float(bar["l"]),
                float(bar["c"]), int(bar.get("v", 0) or 0))
    ts, o, h, low, c, v = bar
    return (ticker, to_epoch(ts), float(o), float(h), float(low), float(c), int(v))
