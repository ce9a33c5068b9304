"""Backtest throughput on one year of minute bars for one ticker (~98,000 bars).

Prints bars per second for:
- the shipped seed-style plugin ``algorithm/sma_crossover.py``, unchanged (event path);
- the same rule written seed-style but reading only the new transactions each minute
  (``get_transactions(algo_id)[seen:]``), to separate the backtest's cost from the plugin's;
- the vectorised path (``--vector``);
- the exact path (the live ``Engine.run_tick`` + simulated broker over SQLite), on 10 days;
- backtrader running the same rule (cheat-on-open), when it is installed;
- loading the year as a CSV file (``load_csv``: parsing, validation, session filter) against
  the floor ``pandas.read_csv`` of the same file, and the ratio (target: under 0.2 s);
- a 50-run sweep (10 sessions each, isolated child processes) on the process pool and on a
  local Dask cluster (when ``distributed`` is installed), against the floor: the same 50 runs
  one after another in this process, without isolation.
"replay" counts the per-minute loop; "end to end" adds preparing the in-memory data and the
metrics. The fast paths run ``--repeat`` times and the fastest run counts (the machine is
shared). Targets: seed-style >= 200k bars/s (10x backtrader), vectorised >= 1M bars/s.

    .venv/bin/python bench/bench_backtest.py [--days N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.backtest.bars import load_csv, write_csv  # noqa: E402
from app.backtest.exact import run_exact  # noqa: E402
from app.backtest.replay import run_event  # noqa: E402
from app.backtest.run import Spec, resolve_plugin  # noqa: E402
from app.backtest.sweep import Job, combinations, run_jobs  # noqa: E402
from app.backtest.synthetic import random_walk  # noqa: E402
from app.backtest.vectorized import run_vector  # noqa: E402
from bench.benchlib import report  # noqa: E402
from db.calendar import nyse  # noqa: E402
from db.timeutil import iso_z  # noqa: E402

CAPITAL = 10_000.0

INCREMENTAL = '''
"""SMA crossover, seed-style, reading only the transactions it has not seen yet."""
from db import get_data_for_algorithm, get_transactions


class Algorithm:
    sma_short = 20
    sma_long = 50

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.cash, self.shares, self.seen = initial_capital, 0, 0

    def run(self, current_time, algo_id):
        bars = get_data_for_algorithm(self.ticker, "last_n_bars", n=self.sma_long + 1,
                                      before_timestamp=current_time)
        if len(bars) < self.sma_long:
            return ("hold", 0)
        closes = [b["ohlcv"]["c"] for b in bars]
        short = sum(closes[-self.sma_short:]) / self.sma_short
        long = sum(closes[-self.sma_long:]) / self.sma_long
        txs = get_transactions(algo_id)
        for t in txs[self.seen:]:
            amount = t["shares"] * t["price"]
            if t["type"] == "buy":
                self.cash, self.shares = self.cash - amount, self.shares + t["shares"]
            else:
                self.cash, self.shares = self.cash + amount, self.shares - t["shares"]
        self.seen = len(txs)
        price = closes[-1]
        if short > long and self.shares == 0:
            buy = int(self.cash * 0.99 // price)
            return ("buy", buy) if buy > 0 else ("hold", 0)
        if short < long and self.shares > 0:
            return ("sell", self.shares)
        return ("hold", 0)
'''


def timed(fn, repeat: int = 1):  # noqa: ANN001, ANN201
    """(result, wall s, CPU s) of the run with the least CPU time out of ``repeat``.

    The machine is shared: wall time swings with the other engineers' work, this process's
    CPU time much less, so the ratios use CPU time.
    """
    best = None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if best is None or cpu < best[2]:
            best = (result, wall, cpu)
    return best


def explain_difference(bars, ours, theirs) -> None:  # noqa: ANN001
    """Say where backtrader's trades first differ from the plugin's, and whether the two
    averages were exactly equal there (a tie that float rounding breaks either way)."""
    import numpy as np

    mine = [(int(f["ts"]), f["type"], f["shares"], round(f["price"], 4)) for f in ours]
    other = [(int(f["time"].timestamp()) if f["time"].tzinfo else
              int(f["time"].replace(tzinfo=UTC).timestamp()), f["type"], f["shares"],
              round(f["price"], 4)) for f in theirs]
    k = next((j for j, (a, b) in enumerate(zip(mine, other, strict=False)) if a != b), None)
    if k is None and len(mine) == len(other):
        print("backtrader made exactly the same trades")
        return
    k = min(len(mine), len(other)) if k is None else k
    i = int(np.searchsorted(bars.ts, min(mine[k][0], other[k][0]) if k < len(mine) and
                            k < len(other) else (mine + other)[k][0]))
    units = np.round(bars.c * 10_000).astype(np.int64)
    s, lg = int(units[i - 20:i].sum()), int(units[i - 50:i].sum())
    tie = 5 * s == 2 * lg
    print(f"backtrader's trades equal the plugin's up to fill {k} of {len(mine)}; at "
          f"{iso_z(int(bars.ts[i]))} the averages are "
          + ("EXACTLY equal (SMA20 = SMA50 to the 1/10000 $): a tie, which float rounding "
             "breaks differently in each engine; later trades follow from it" if tie else
             f"different by {abs(5 * s - 2 * lg) / 1e5:.6f} $ (not a tie)"))


def bench_csv(bars, cal, repeat: int) -> None:  # noqa: ANN001
    """CSV load time vs the floor, pandas.read_csv alone of the same file, measured in turns
    (ours, floor, ours, ...) so both see the same machine; the least of each counts. The
    ratio uses CPU time (pandas reads on threads: process CPU counts them all); wall time is
    printed too, the target (under 0.2 s for a year) being a wall figure on an idle machine."""
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "year.csv"
        write_csv(bars, path)
        size = path.stat().st_size
        load_csv(path, bars.ticker, cal)  # imports and the calendar's arrays, once
        ours_w = ours_c = floor_w = floor_c = float("inf")
        for _ in range(max(3, repeat)):
            _, w, c = timed(lambda: load_csv(path, bars.ticker, cal))
            ours_w, ours_c = min(ours_w, w), min(ours_c, c)
            _, w, c = timed(lambda: pd.read_csv(path))
            floor_w, floor_c = min(floor_w, w), min(floor_c, c)
    print(f"CSV load, {len(bars):,} rows ({size / 1e6:.1f} MB): load_csv {ours_w:.3f} s wall "
          f"/ {ours_c:.3f} s CPU; floor pandas.read_csv {floor_w:.3f} s wall / {floor_c:.3f} s "
          f"CPU; ratio {ours_c / floor_c:.2f}x CPU, {ours_w / floor_w:.2f}x wall "
          f"(target: under 0.2 s)")


def bench_sweep(cal, runs: int = 50) -> None:  # noqa: ANN001
    """50 isolated runs on the process pool and on a local Dask cluster vs one by one here."""
    bars = random_walk("SWEEP", cal, date(2024, 3, 1), date(2024, 3, 14), seed=9)
    grid = combinations({"sma_short": [str(x) for x in range(5, 30, 5)],
                         "sma_long": [str(x) for x in range(40, 140, 10)]})[:runs]
    info = resolve_plugin("sma_crossover")
    jobs = [Job(Spec("sma_crossover", "SWEEP", params=c, capital=CAPITAL), (bars, 0))
            for c in grid]
    t0 = time.perf_counter()
    serial = [run_event(info, c, bars, 0, CAPITAL).metrics.final_equity for c in grid]
    floor = time.perf_counter() - t0
    print(f"\nSweep: {len(jobs)} runs x {len(bars):,} bars (sma_crossover grid)")
    t0 = time.perf_counter()
    pooled = run_jobs(jobs, workers=2)
    pool_s = time.perf_counter() - t0
    same = [r["report"]["metrics"]["final_equity"] for r in pooled] == serial
    report("backtest", f"{len(jobs)}-run sweep, process pool (2 workers)", pool_s, floor, "s",
           None, floor_what="the same runs one by one in this process, not isolated")
    print(f"  same results as the serial runs: {same}")
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("  distributed is not installed: no Dask comparison")
        return
    t0 = time.perf_counter()
    remote = run_jobs(jobs, dask="local")
    dask_s = time.perf_counter() - t0
    same = [r["report"]["metrics"]["final_equity"] for r in remote] == serial
    report("backtest", f"{len(jobs)}-run sweep, local Dask cluster (2 workers, started in "
           "the run)", dask_s, floor, "s", None,
           floor_what="the same runs one by one in this process, not isolated")
    print(f"  same results as the serial runs: {same}")


def _wall(fn) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365, help="calendar days of bars (default 365)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="runs per fast path, the fastest counts (default 5)")
    ap.add_argument("--csv-only", action="store_true", help="only the CSV load")
    ap.add_argument("--sweep-only", action="store_true",
                    help="only the 50-run sweep (process pool vs local Dask cluster)")
    ap.add_argument("--skip-shipped", action="store_true",
                    help="skip the shipped plugin (slow when it rescans all transactions)")
    args = ap.parse_args()
    cal = nyse()
    if args.sweep_only:
        bench_sweep(cal)
        return 0
    first = date(2024, 1, 2)
    bars = random_walk("BENCH", cal, first, first + timedelta(days=args.days - 1), seed=3)
    n = len(bars)
    print(f"{n:,} one-minute bars of BENCH ({bars.first_day()} .. {bars.last_day()}), "
          f"seeded random walk, capital {CAPITAL:,.0f}, no costs, fill at the next open\n")
    rows: list[tuple[str, int, float, float, int, float]] = []
    bench_csv(bars, cal, args.repeat)
    if args.csv_only:
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "sma_incremental.py").write_text(INCREMENTAL, encoding="utf-8")
        incremental = resolve_plugin("sma_incremental", (Path(tmp),))
        r, wall, cpu = timed(lambda: run_event(incremental, {}, bars, 0, CAPITAL), args.repeat)
        rows.append(("seed-style SMA, reads new txs (event)", n, wall, cpu, len(r.fills),
                     r.metrics.final_equity))
        reference = r

        shipped = resolve_plugin("sma_crossover")
        if not args.skip_shipped:
            r, wall, cpu = timed(lambda: run_event(shipped, {}, bars, 0, CAPITAL))
            rows.append(("algorithm/sma_crossover.py as shipped", n, wall, cpu, len(r.fills),
                         r.metrics.final_equity))
            same = [(f["i"], f["price"]) for f in r.fills] == \
                   [(f["i"], f["price"]) for f in reference.fills]
            print(f"shipped plugin made the same {len(r.fills)} fills: {same}")

        fast = resolve_plugin("sma_fast")
        r, wall, cpu = timed(lambda: run_event(fast, {}, bars, 0, CAPITAL), args.repeat)
        rows.append(("algorithm/sma_fast.py (closes/position/cash)", n, wall, cpu,
                     len(r.fills), r.metrics.final_equity))

        r, wall, cpu = timed(lambda: run_vector("sma_crossover", {"sma_short": 20,
                                                                  "sma_long": 50},
                                                bars, 0, CAPITAL), args.repeat)
        rows.append(("vectorised (--vector)", n, wall, cpu, len(r.fills),
                     r.metrics.final_equity))

        short = bars.slice(0, min(n, 3900))
        r, wall, cpu = timed(lambda: run_exact(shipped, {}, short, 0, CAPITAL))
        rows.append((f"exact: live Engine.run_tick ({len(short):,} bars)", len(short), wall,
                     cpu, len(r.fills), r.metrics.final_equity))

    bt_rate = None
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "backtest"))
        from reference_bt import run_reference
    except ImportError:
        print("backtrader is not installed: no comparison")
    else:
        (fills, value), wall, cpu = timed(lambda: run_reference(bars, CAPITAL),
                                          max(1, args.repeat - 1))
        bt_rate = n / cpu
        rows.append(("backtrader, same rule (cheat-on-open)", n, wall, cpu, len(fills), value))
        explain_difference(bars, reference.fills, fills)

    print(f"\n{'path (end to end, data preparation included)':<46} {'bars/s CPU':>11} "
          f"{'bars/s wall':>12} {'fills':>6} {'final equity':>13} {'x backtrader':>13}")
    for name, bars_n, wall, cpu, nfills, final in rows:
        vs = f"{bars_n / cpu / bt_rate:.1f}x" if bt_rate else "-"
        print(f"{name:<46} {bars_n / cpu:>11,.0f} {bars_n / wall:>12,.0f} {nfills:>6} "
              f"{final:>13,.2f} {vs:>13}")
    print("\ntargets: seed-style >= 200,000 bars/s end to end (10x backtrader); "
          "vectorised >= 1,000,000 bars/s")
    bench_sweep(cal)
    return 0


if __name__ == "__main__":
    sys.exit(main())
