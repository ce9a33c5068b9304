"""Market DB benchmark: bulk insert rate and query latency on 10 million bars.

    .venv/bin/python bench/bench_marketdb.py [--tickers 100] [--bars 100000] [--keep DIR]

Fills a fresh market DB the way the app does (``MarketStore.insert_rows``: validation, the
regular-session filter, upsert in one transaction per batch), in live order: minute by minute,
every ticker per minute. Then times "last 51 bars before t" and "latest price" at random
tickers and times. Targets: >= 500,000 bars/s insert; last-51 p99 < 200 us; latest p99 < 20 us.

Floors, measured in the same run (issue 15): the insert against a plain sqlite3 executemany of
the same tuples into the same schema (``floor_insert``, same pragmas, same batches); "last 51"
as seed dicts and "latest price" against the bare SQL query returning tuples on a plain
connection (``floor_queries``). Targets: insert >= 0.8x; last 51 p99 <= 2x; latest p99 <= 1.5x.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
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


def floor_insert(path: Path, schema: list[str], batches) -> tuple[int, float]:
    """Plain sqlite3: executemany of the same tuples into the same schema, one transaction
    per batch, the app's pragmas (WAL, synchronous NORMAL). Returns (rows, seconds)."""
    for extra in ("", "-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for sql in schema:
        conn.execute(sql)
    n, spent = 0, 0.0
    for rows in batches:
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO bars (ticker, ts, o, h, l, c, v) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        spent += time.perf_counter() - t0
        n += len(rows)
    conn.close()
    for extra in ("", "-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    return n, spent


def floor_queries(path: Path, asks: list[tuple[str, int]]) -> tuple[list[float], list[float]]:
    """The bare SQL on a plain connection, tuples back: last 51 and latest price (us)."""
    conn = sqlite3.connect(path)
    q51 = "SELECT ts, o, h, l, c, v FROM bars WHERE ticker = ? AND ts < ? ORDER BY ts DESC LIMIT 51"
    q1 = "SELECT c FROM bars WHERE ticker = ? ORDER BY ts DESC LIMIT 1"
    last51, latest = [], []
    for t, before in asks:
        q0 = time.perf_counter_ns()
        conn.execute(q51, (t, before)).fetchall()
        q1_ = time.perf_counter_ns()
        conn.execute(q1, (t,)).fetchone()
        q2 = time.perf_counter_ns()
        last51.append((q1_ - q0) / 1000)
        latest.append((q2 - q1_) / 1000)
    conn.close()
    return last51, latest


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
    insert_s, stored = 0.0, 0
    for rows in live_batches(minutes, tickers, prices):
        t0 = time.perf_counter()
        stored += store.insert_rows(rows)
        insert_s += time.perf_counter() - t0
    assert stored == total, (stored, total)
    print(f"bars stored:            {stored:,} ({len(tickers)} tickers x {len(minutes):,} minutes)")
    print(f"insert (live order):    {stored / insert_s:,.0f} bars/s  ({insert_s:.1f} s)  "
          f"target >= 500,000")
    print(f"DB size:                {path.stat().st_size / 1e6:,.0f} MB")
    schema = [r[0] for r in store.conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'bars' AND sql IS NOT NULL "
        "ORDER BY type DESC")]
    n_floor, floor_s = floor_insert(folder / "floor.db", schema,
                                    live_batches(minutes, tickers, prices))
    report("marketdb", f"insert {total / 1e6:g}M bars, live order", stored / insert_s,
           n_floor / floor_s, "bars/s", 0.8, "higher", "plain sqlite3 executemany")

    rnd = random.Random(2)
    lo, hi = int(minutes[60]), int(minutes[-1])
    asks = [(rnd.choice(tickers), rnd.randint(lo, hi) // 60 * 60) for _ in range(args.queries)]
    f51, flatest = floor_queries(path, asks)
    last51, latest = [], []
    for t, before in asks:
        q0 = time.perf_counter_ns()
        bars = store.last_n_bars(t, 51, before)
        q1 = time.perf_counter_ns()
        store.latest_price(t)
        q2 = time.perf_counter_ns()
        assert len(bars) == 51
        last51.append((q1 - q0) / 1000)
        latest.append((q2 - q1) / 1000)
    raw = []
    for _ in range(args.queries):
        t = rnd.choice(tickers)
        before = rnd.randint(lo, hi) // 60 * 60
        q0 = time.perf_counter_ns()
        store.last_n_rows(t, 51, before)
        raw.append((time.perf_counter_ns() - q0) / 1000)
    print(f"last 51 bars (seed dicts): median {statistics.median(last51):6.1f} us   "
          f"p99 {percentile(last51, 99):6.1f} us   target p99 < 200 us")
    print(f"last 51 rows (tuples):     median {statistics.median(raw):6.1f} us   "
          f"p99 {percentile(raw, 99):6.1f} us")
    print(f"latest price:              median {statistics.median(latest):6.1f} us   "
          f"p99 {percentile(latest, 99):6.1f} us   target p99 < 20 us")
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
