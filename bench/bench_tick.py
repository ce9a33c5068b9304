"""Tick latency: 100 running algorithms on 100 tickers, a market DB of 1 million bars.

One tick = the engine's work from the minute boundary + 2 s to the last order recorded
(``Engine.run_tick``: poll open orders, run every plugin in the sandbox with its time limit,
check decisions, write intents, send to the simulated broker over SQLite, record fills).
Prints the median and p99 over 50 ticks and the peak memory (ru_maxrss), for the seed-style
reference plugin (``sma_crossover``) and for its fast-path twin (``sma_fast``).

Floor, measured in the same run over the same minutes (``floor_tick``): per tick, the bare SQL
"last 51" query for each ticker on a plain sqlite3 connection to the same market DB, plus one
executemany of that tick's orders into a table of the same schema. Target: tick p99 <= 3x the
floor's p99 (issue 15).

    .venv/bin/python bench/bench_tick.py [--ticks 50] [--algos 100] [--bars 1000000]
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.broker.simulated import SimulatedBroker  # noqa: E402
from app.clock import ManualClock  # noqa: E402
from app.engine.facade import Engine  # noqa: E402
from app.marketdata.synthetic import SyntheticFeed  # noqa: E402
from bench.benchlib import percentile, report  # noqa: E402
from db.calendar import nyse  # noqa: E402
from db.market import MarketStore  # noqa: E402
from db.system import SystemStore  # noqa: E402
from db.timeutil import iso_z  # noqa: E402


def build_market(path: Path, tickers: list[str], total_bars: int) -> tuple[MarketStore, list]:
    """Synthetic minute bars, the same number per ticker, ending with the benchmark's day."""
    cal = nyse()
    per_ticker = total_bars // len(tickers)
    sessions_needed = per_ticker // 390 + 1
    sessions = cal.sessions_between(date(2024, 1, 2), date(2024, 12, 31))[:sessions_needed]
    market = MarketStore(path, cal)
    gen = SyntheticFeed(market, ManualClock(sessions[0].open), cal, seed=1)
    t0 = time.perf_counter()
    for t in tickers:
        rows = []
        for s in sessions:
            a = gen.session_bars(t, s)
            rows.extend((t, int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]),
                         int(r[5])) for r in a)
        market.insert_rows(rows[-per_ticker:])
    print(f"market DB: {market.count():,} bars for {len(tickers)} tickers "
          f"({time.perf_counter() - t0:.1f} s to build)")
    return market, sessions


def floor_tick(market_path: Path, orders_sql: list[str], tickers: list[str], minutes: list,
               order_counts: list[int], folder: Path) -> list[float]:
    """Per minute: 100 x the bare "last 51" query returning tuples, then one executemany of
    that minute's orders (as many as the engine placed) into the same ``orders`` schema."""
    conn = sqlite3.connect(market_path)
    path = folder / "floor-orders.db"
    for extra in ("", "-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    out = sqlite3.connect(path, isolation_level=None)
    out.execute("PRAGMA journal_mode=WAL")
    out.execute("PRAGMA synchronous=NORMAL")
    for sql in orders_sql:
        out.execute(sql)
    q = "SELECT ts, o, h, l, c, v FROM bars WHERE ticker = ? AND ts < ? ORDER BY ts DESC LIMIT 51"
    ins = ("INSERT INTO orders (client_order_id, ticker, side, qty, status, minute, created_at, "
           "updated_at) VALUES (?, ?, ?, ?, 'intent', ?, ?, ?)")
    lat = []
    for i, (m, n) in enumerate(zip(minutes, order_counts, strict=True)):
        before = int(m.timestamp())
        stamp = iso_z(m)
        t0 = time.perf_counter()
        for t in tickers:
            conn.execute(q, (t, before)).fetchall()
        rows = [(f"floor-{i}-{k}", tickers[k % len(tickers)], "buy", 1, stamp, stamp, stamp)
                for k in range(n)]
        out.execute("BEGIN")
        out.executemany(ins, rows)
        out.execute("COMMIT")
        lat.append((time.perf_counter() - t0) * 1000)
    conn.close()
    out.close()
    return lat


def orders_schema(system: SystemStore) -> list[str]:
    """CREATE statements of the system DB's ``orders`` table and its indexes."""
    return [r[0] for r in system.conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'orders' AND sql IS NOT NULL "
        "ORDER BY type DESC")]


def bench(plugin: str, market: MarketStore, sessions: list, tickers: list[str], ticks: int,
          folder: Path) -> list[float]:
    cal = nyse()
    day = sessions[-1]
    minutes = day.minutes()[60:60 + ticks]
    clock = ManualClock(minutes[0])
    system = SystemStore(folder / f"system-{plugin}.db")
    broker = SimulatedBroker(system, market, clock, starting_cash=10_000 * len(tickers) + 1,
                             slippage_bps=1.0, calendar=cal)
    engine = Engine(mode="demo", system=system, market=market, broker=broker, feed=None,
                    clock=clock, calendar=cal, plugin_timeout=2.0)
    for t in tickers:
        engine.create_algorithm(plugin, t, 10_000)
    engine.start()
    latencies, wall, orders, counts = [], [], 0, []
    for m in minutes:
        clock.set(m + timedelta(seconds=2))
        started = time.perf_counter()
        r = engine.run_tick(m)
        wall.append((time.perf_counter() - started) * 1000)
        latencies.append(r.latency_ms)
        counts.append(sum(1 for d in r.decisions if d["action"] in ("buy", "sell")))
        orders += counts[-1]
        assert not r.errors, r.errors
    schema = orders_schema(system)
    engine.close()
    system.close()
    lat = sorted(latencies)
    p99 = percentile(lat, 99)
    floor = floor_tick(Path(market.path), schema, tickers, minutes, counts, folder)
    print(f"{plugin:>14}: {len(tickers)} algorithms, {len(minutes)} ticks, {orders} orders: "
          f"median {statistics.median(lat):.1f} ms, p99 {p99:.1f} ms, max {lat[-1]:.1f} ms; "
          f"floor median {statistics.median(floor):.1f} ms, p99 {percentile(floor, 99):.1f} ms")
    report("tick", f"tick p99, {len(tickers)} algos, {plugin}", p99, percentile(floor, 99),
           "ms", 3.0 if plugin == "sma_crossover" else None, "lower",
           "bare last-51 x N + executemany of the orders")
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=50)
    ap.add_argument("--algos", type=int, default=100)
    ap.add_argument("--bars", type=int, default=1_000_000)
    args = ap.parse_args()
    tickers = [f"T{i:03d}" for i in range(args.algos)]
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        market, sessions = build_market(folder / "market.db", tickers, args.bars)
        for plugin in ("sma_crossover", "sma_fast"):
            bench(plugin, market, sessions, tickers, args.ticks, folder)
        market.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (ru_maxrss): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
