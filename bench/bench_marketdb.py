"""Market DB benchmark: bulk insert rate and query latency on 10 million bars.

    .venv/bin/python bench/bench_marketdb.py [--tickers 100] [--bars 100000] [--keep DIR]

Fills a fresh market DB the way the app does (``MarketStore.insert_rows``: validation, the
regular-session filter, upsert in one transaction per batch), in live order: minute by minute,
every ticker per minute. Then times "last 51 bars before t" and "latest price" at random
tickers and times. Targets: >= 500,000 bars/s insert; last-51 p99 < 200 us; latest p99 < 20 us.

Floors, measured in the same run (issue 15): the insert against a plain sqlite3 executemany of
the same tuples into the same schema (``floor_insert``, same pragmas, same batches); "last 51"
as seed dicts and "latest price" against the bare SQL query returning tuples on a plain
connection (``FloorQueries``). Targets: insert >= 0.8x; last 51 p99 <= 2x; latest p99 <= 1.5x.

Fairness on a shared machine (load moves figures 3-6x within a minute): the app's work and its
floor are interleaved, never run one after the other. Each insert batch goes to the app's store
and then, the same tuples, to the floor's DB (both files grow together); each query is asked of
the app and of the floor back to back, the order alternating, so a burst of load lands on both
(one pass for "last 51", one for the price).
As in the running app (``Engine.start``), the garbage collector's start-up objects are frozen
before the queries are timed.
"""

from __future__ import annotations

import argparse
import gc
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.benchlib import report  # noqa: E402
from db.calendar import nyse  # noqa: E402
from db.market import MarketStore  # noqa: E402


def session_minutes(n: int) -> np.ndarray:
    """Epoch seconds of the last ``n`` regular-session minutes up to a recent session."""
    cal = nyse()
    from datetime import date, timedelta

    end = date(2026, 10, 30)
    days = cal.sessions_between(end - timedelta(days=int(n / 390 * 1.6) + 30), end)
    out: list[int] = []
    for s in reversed(days):
        m = [int(t.timestamp()) for t in s.minutes()]
        out[:0] = m
        if len(out) >= n:
            break
    return np.array(out[-n:], dtype=np.int64)


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def live_batches(minutes: np.ndarray, tickers: list[str], prices: np.ndarray):
    """The same tuples in the same batches (live order: minute by minute, every ticker)."""
    batch_minutes = max(1, 200_000 // len(tickers))
    for start in range(0, len(minutes), batch_minutes):
        rows = []
        for mi in range(start, min(start + batch_minutes, len(minutes))):
            ts = int(minutes[mi])
            row_prices = prices[mi].tolist()
            for ti, t in enumerate(tickers):
                c = row_prices[ti]
                rows.append((t, ts, c, c * 1.001, c * 0.999, c, 100))
        yield rows


class FloorInsert:
    """Plain sqlite3: executemany of the same tuples into the same schema, one transaction per
    batch, the app's pragmas (WAL, synchronous NORMAL)."""

    def __init__(self, path: Path, schema: list[str]) -> None:
        self.path = path
        self._unlink()
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        for sql in schema:
            self.conn.execute(sql)

    def insert(self, rows: list) -> float:
        """Seconds to store one batch."""
        t0 = time.perf_counter()
        self.conn.execute("BEGIN")
        self.conn.executemany("INSERT OR REPLACE INTO bars (ticker, ts, o, h, l, c, v) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self.conn.execute("COMMIT")
        return time.perf_counter() - t0

    def close(self) -> None:
        self.conn.close()
        self._unlink()

    def _unlink(self) -> None:
        for extra in ("", "-wal", "-shm"):
            Path(f"{self.path}{extra}").unlink(missing_ok=True)


class FloorQueries:
    """The bare SQL on a plain connection, tuples back: last 51 and latest price."""

    Q51 = "SELECT ts, o, h, l, c, v FROM bars WHERE ticker = ? AND ts < ? ORDER BY ts DESC LIMIT 51"
    Q1 = "SELECT c FROM bars WHERE ticker = ? ORDER BY ts DESC LIMIT 1"

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)

    def last51(self, ticker: str, before: int) -> float:
        q0 = time.perf_counter_ns()
        self.conn.execute(self.Q51, (ticker, before)).fetchall()
        return (time.perf_counter_ns() - q0) / 1000

    def latest(self, ticker: str, before: int) -> float:
        q0 = time.perf_counter_ns()
        self.conn.execute(self.Q1, (ticker,)).fetchone()
        return (time.perf_counter_ns() - q0) / 1000


def app_last51(store: MarketStore, ticker: str, before: int) -> float:
    """The app's "last 51" in the seed shape, as a seed-style plugin asks (us)."""
    q0 = time.perf_counter_ns()
    bars = store.last_n_bars(ticker, 51, before)
    spent = (time.perf_counter_ns() - q0) / 1000
    assert len(bars) == 51
    return spent


def app_latest(store: MarketStore, ticker: str, before: int) -> float:
    q0 = time.perf_counter_ns()
    store.latest_price(ticker)
    return (time.perf_counter_ns() - q0) / 1000


def alternate(app, floor, asks: list[tuple[str, int]]) -> tuple[list[float], list[float]]:
    """Each ask of the app and of the floor back to back, who goes first alternating. One
    kind of query per pass: a price query timed right after 51 dicts were built and freed
    ran ~1.3x slower at p90 (cold caches) than after the floor's tuples, which is the
    order of the calls, not the cost of either."""
    a, f = [], []
    for i, (t, before) in enumerate(asks):
        if i % 2:
            a.append(app(t, before))
            f.append(floor(t, before))
        else:
            f.append(floor(t, before))
            a.append(app(t, before))
    return a, f


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickers", type=int, default=100)
    ap.add_argument("--bars", type=int, default=100_000, help="bars per ticker")
    ap.add_argument("--queries", type=int, default=20_000)
    ap.add_argument("--keep", help="folder to keep the DB in (default: a temporary folder)")
    args = ap.parse_args()

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-marketdb-"))
    path = folder / "market.db"
    if path.exists():
        path.unlink()
    store = MarketStore(path)
    tickers = [f"T{i:03d}" for i in range(args.tickers)]
    minutes = session_minutes(args.bars)
    rng = np.random.default_rng(1)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.0005, (len(minutes), len(tickers))), axis=0))

    total = len(minutes) * len(tickers)
    schema = [r[0] for r in store.conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'bars' AND sql IS NOT NULL "
        "ORDER BY type DESC")]
    floor_ins = FloorInsert(folder / "floor.db", schema)
    insert_s, floor_s, stored = 0.0, 0.0, 0
    for i, rows in enumerate(live_batches(minutes, tickers, prices)):
        if i % 2:
            floor_s += floor_ins.insert(rows)
        t0 = time.perf_counter()
        stored += store.insert_rows(rows)
        insert_s += time.perf_counter() - t0
        if not i % 2:
            floor_s += floor_ins.insert(rows)
    floor_ins.close()
    assert stored == total, (stored, total)
    print(f"bars stored:            {stored:,} ({len(tickers)} tickers x {len(minutes):,} minutes)")
    print(f"insert (live order):    {stored / insert_s:,.0f} bars/s  ({insert_s:.1f} s)  "
          f"target >= 500,000")
    print(f"DB size:                {path.stat().st_size / 1e6:,.0f} MB")
    report("marketdb", f"insert {total / 1e6:g}M bars, live order", stored / insert_s,
           total / floor_s, "bars/s", 0.8, "higher", "plain sqlite3 executemany")

    rnd = random.Random(2)
    lo, hi = int(minutes[60]), int(minutes[-1])
    asks = [(rnd.choice(tickers), rnd.randint(lo, hi) // 60 * 60) for _ in range(args.queries)]
    floor_q = FloorQueries(path)
    for t, before in asks[:200]:  # both connections' schema read and first pages
        app_last51(store, t, before)
        app_latest(store, t, before)
        floor_q.last51(t, before)
        floor_q.latest(t, before)
    gc.collect()
    gc.freeze()  # as Engine.start does once the app is up
    last51, f51 = alternate(partial(app_last51, store), floor_q.last51, asks)
    latest, flatest = alternate(partial(app_latest, store), floor_q.latest, asks)
    floor_q.conn.close()
    raw = []
    for _ in range(args.queries):
        t = rnd.choice(tickers)
        before = rnd.randint(lo, hi) // 60 * 60
        q0 = time.perf_counter_ns()
        store.last_n_rows(t, 51, before)
        raw.append((time.perf_counter_ns() - q0) / 1000)
    print(f"last 51 bars (seed dicts): median {statistics.median(last51):6.1f} us   "
          f"p99 {percentile(last51, 99):6.1f} us   target p99 < 200 us")
    print(f"last 51, floor (tuples):   median {statistics.median(f51):6.1f} us   "
          f"p99 {percentile(f51, 99):6.1f} us")
    print(f"last 51 rows (app tuples): median {statistics.median(raw):6.1f} us   "
          f"p99 {percentile(raw, 99):6.1f} us")
    print(f"latest price:              median {statistics.median(latest):6.1f} us   "
          f"p99 {percentile(latest, 99):6.1f} us   target p99 < 20 us")
    print(f"latest price, floor:       median {statistics.median(flatest):6.1f} us   "
          f"p99 {percentile(flatest, 99):6.1f} us")
    report("marketdb", "last 51 as seed dicts, p99", percentile(last51, 99),
           percentile(f51, 99), "us", 2.0, "lower", "bare SQL, tuples")
    report("marketdb", "latest price, p99", percentile(latest, 99), percentile(flatest, 99),
           "us", 1.5, "lower", "bare SQL")
    store.close()
    if not args.keep:
        path.unlink()
        for extra in ("-wal", "-shm"):
            Path(str(path) + extra).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
