"""Tick latency: 100 running algorithms on 100 tickers, a market DB of 1 million bars.

One tick = the engine's work from the minute boundary + 2 s to the last order recorded
(``Engine.run_tick``: poll open orders, run every plugin in the sandbox with its time limit,
check decisions, write intents, send to the simulated broker over SQLite, record fills).
Prints the median and p99 over 300 ticks and the peak memory (ru_maxrss), for the seed-style
reference plugin (``sma_crossover``) and for its fast-path twin (``sma_fast``).
Over 300 ticks the p99 is the fourth-worst tick; over 100 it was the second-worst alone (the
first, cold tick is always the worst), and pinned to one core it moved 2.2-3.7x the floor from
run to run on a shared machine.

Floor, measured in the same run over the same minutes (``FloorTick``): per tick, the bare SQL
"last 51" query for each ticker on a plain sqlite3 connection to the same market DB, plus one
executemany of that tick's orders into a table of the same schema. Target: tick p99 <= 3x the
floor's p99 (issue 15). The floor's tick runs right after the engine's tick of the same minute
(not all floors after all ticks), so both see the same load on a shared machine.

Also printed, report only: the CPU the tick used in every process (the engine's, its plugin
workers') against the floor's CPU, per tick (``/proc/<pid>/task/*/schedstat``): on a busy
machine the wall-clock ratio also counts waiting for a core three processes long, the CPU
ratio counts only the work.

Also: ``get_transactions`` of an algorithm with 2,000 fills (a seed-style plugin calls it every
minute for the whole list), one new fill before each call, against the bare SQL read of the
same rows as tuples; and, report only, the full read as it was before the incremental one
(``SystemStore.transactions`` now reads only the rows after the last one it has).

    .venv/bin/python bench/bench_tick.py [--ticks 300] [--algos 100] [--bars 1000000]
                                         [--tx-fills 2000] [--tx-only]
"""

from __future__ import annotations

import argparse
import os
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


class FloorTick:
    """Per minute: 100 x the bare "last 51" query returning tuples, then one executemany of
    that minute's orders (as many as the engine placed) into the same ``orders`` schema."""

    Q = "SELECT ts, o, h, l, c, v FROM bars WHERE ticker = ? AND ts < ? ORDER BY ts DESC LIMIT 51"
    INS = ("INSERT INTO orders (client_order_id, ticker, side, qty, status, minute, created_at, "
           "updated_at) VALUES (?, ?, ?, ?, 'intent', ?, ?, ?)")

    def __init__(self, market_path: Path, orders_sql: list[str], tickers: list[str],
                 folder: Path) -> None:
        self.tickers = tickers
        self.conn = sqlite3.connect(market_path)
        self.path = folder / "floor-orders.db"
        for extra in ("", "-wal", "-shm"):
            Path(f"{self.path}{extra}").unlink(missing_ok=True)
        self.out = sqlite3.connect(self.path, isolation_level=None)
        self.out.execute("PRAGMA journal_mode=WAL")
        self.out.execute("PRAGMA synchronous=NORMAL")
        for sql in orders_sql:
            self.out.execute(sql)
        self.n = 0

    def tick(self, minute, orders: int) -> tuple[float, float]:
        """(wall ms, CPU ms) of one floor tick."""
        before = int(minute.timestamp())
        stamp = iso_z(minute)
        self.n += 1
        c0, t0 = time.process_time(), time.perf_counter()
        for t in self.tickers:
            self.conn.execute(self.Q, (t, before)).fetchall()
        rows = [(f"floor-{self.n}-{k}", self.tickers[k % len(self.tickers)], "buy", 1, stamp,
                 stamp, stamp) for k in range(orders)]
        self.out.execute("BEGIN")
        self.out.executemany(self.INS, rows)
        self.out.execute("COMMIT")
        return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000

    def close(self) -> None:
        self.conn.close()
        self.out.close()


def cpu_ns(pids: list[int]) -> int:
    """CPU time used so far by every thread of ``pids`` (ns, from schedstat)."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(task.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that just ended
    return total


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
    floor = FloorTick(Path(market.path), orders_schema(system), tickers, folder)
    procs = engine._pool.processes  # the plugin worker processes (None: threads)
    pids = [os.getpid()] + (procs.pids() if procs is not None else [])
    latencies, cpu, floor_lat, floor_cpu, counts = [], [], [], [], []
    engine_cpu: list[float] = []  # the engine's process alone (the rest: its workers)
    for m in minutes:
        clock.set(m + timedelta(seconds=2))
        c0, e0 = cpu_ns(pids), cpu_ns(pids[:1])
        r = engine.run_tick(m)
        e1 = cpu_ns(pids[:1])
        cpu.append((cpu_ns(pids) - c0) / 1e6)
        engine_cpu.append((e1 - e0) / 1e6)
        latencies.append(r.latency_ms)
        counts.append(sum(1 for d in r.decisions if d["action"] in ("buy", "sell")))
        assert not r.errors, r.errors
        f = floor.tick(m, counts[-1])  # the same minute, as many orders
        floor_lat.append(f[0])
        floor_cpu.append(f[1])
    floor.close()
    engine.close()
    system.close()
    lat = sorted(latencies)
    p99 = percentile(lat, 99)
    print(f"{plugin:>14}: {len(tickers)} algorithms, {len(minutes)} ticks, {sum(counts)} orders: "
          f"median {statistics.median(lat):.1f} ms, p99 {p99:.1f} ms, max {lat[-1]:.1f} ms; "
          f"floor median {statistics.median(floor_lat):.1f} ms, "
          f"p99 {percentile(floor_lat, 99):.1f} ms")
    print(f"{'':>14}  CPU per tick, all processes: median {statistics.median(cpu):.1f} ms, "
          f"p99 {percentile(cpu, 99):.1f} ms; floor median {statistics.median(floor_cpu):.1f} "
          f"ms, p99 {percentile(floor_cpu, 99):.1f} ms")
    print(f"{'':>14}  of which the engine's process: median {statistics.median(engine_cpu):.1f} "
          f"ms, p99 {percentile(engine_cpu, 99):.1f} ms; its {len(pids) - 1} plugin workers: "
          f"the rest")
    report("tick", f"tick p99, {len(tickers)} algos, {plugin}", p99, percentile(floor_lat, 99),
           "ms", 3.0 if plugin == "sma_crossover" else None, "lower",
           "bare last-51 x N + executemany of the orders")
    report("tick", f"tick CPU p99 (all processes), {plugin}", percentile(cpu, 99),
           percentile(floor_cpu, 99), "ms", None, "lower", "the floor's CPU")
    return lat


def bench_transactions(folder: Path, market: MarketStore, fills: int, calls: int = 200) -> None:
    """Median of ``get_transactions`` (the provider's call) vs the bare SQL read, interleaved."""
    import db

    system = SystemStore(folder / "system-tx.db")
    algo = system.add_algorithm("sma_crossover", "T000", 10_000.0)

    def add(i: int) -> None:
        system.add_transaction(algo, "T000", "buy" if i % 2 == 0 else "sell", 1 + i % 5,
                               100.0 + i % 7, f"2024-01-02T15:{i % 60:02d}:00Z", fill_id=f"f{i}")

    with system.atomic():
        for i in range(fills):
            add(i)
    provider = db.StoreProvider(system, market)
    bare = sqlite3.connect(system.path)
    q = ("SELECT id, algo_id, order_id, ticker, type, shares, price, commission, timestamp "
         "FROM transactions WHERE algo_id = ? ORDER BY id")
    app, floor, before = [], [], []
    provider.transactions(algo)  # the first call reads them all (the engine's start)
    for i in range(fills, fills + calls):
        add(i)
        t0 = time.perf_counter()
        n = len(provider.transactions(algo))
        t1 = time.perf_counter()
        m = len(bare.execute(q, (algo,)).fetchall())
        t2 = time.perf_counter()
        k = len(system._rows(q, (algo,)))  # the read before: every row, as dicts
        t3 = time.perf_counter()
        assert n == m == k == i + 1, (n, m, k)
        app.append((t1 - t0) * 1e6)
        floor.append((t2 - t1) * 1e6)
        before.append((t3 - t2) * 1e6)
    bare.close()
    system.close()
    med = statistics.median
    print(f"get_transactions, {fills:,} fills: median {med(app):.0f} us, p99 "
          f"{percentile(app, 99):.0f} us; full read as before: median {med(before):.0f} us; "
          f"bare SQL median {med(floor):.0f} us, p99 {percentile(floor, 99):.0f} us")
    report("tick", f"get_transactions median, {fills:,} fills", med(app), med(floor), "us",
           1.0, "lower", "bare SQL read of the rows as tuples")
    report("tick", f"get_transactions median before (full read), {fills:,} fills",
           med(before), med(floor), "us", None, "lower", "bare SQL read of the rows as tuples")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=300)  # p99 of 100 was one sample: the 2nd worst
    ap.add_argument("--algos", type=int, default=100)
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--tx-fills", type=int, default=2000)
    ap.add_argument("--tx-only", action="store_true", help="only the get_transactions row")
    args = ap.parse_args()
    tickers = [f"T{i:03d}" for i in range(args.algos)]
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        if args.tx_only:
            market = MarketStore(folder / "market.db", nyse())
            bench_transactions(folder, market, args.tx_fills)
            market.close()
            return
        market, sessions = build_market(folder / "market.db", tickers, args.bars)
        bench_transactions(folder, market, args.tx_fills)
        for plugin in ("sma_crossover", "sma_fast"):
            bench(plugin, market, sessions, tickers, args.ticks, folder)
        market.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (ru_maxrss): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
