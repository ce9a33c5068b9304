"""Endurance: many sessions of trading compressed, the process SIGKILLed and restarted.

    .venv/bin/python bench/soak.py [--days 22] [--kills 20] [--algos 20] [--tickers 15]

A child process runs the engine (demo market replayed from a market DB built up front, the
simulated broker on the system DB, the seed-style plugin) minute by minute through ``--days``
regular sessions on a manual clock, as fast as it goes. The parent kills it with SIGKILL at
random moments ``--kills`` times and starts it again, as systemd would; each start resumes at
the minute after the last one it recorded. At the end it checks and prints:

- no duplicate order for one algorithm and minute, no intent sent for a minute other than its
  own (client order ids are unique by schema; the check counts (algo, minute) pairs);
- every fill recorded exactly once (transactions per order == fills the broker made);
- each ticker's ledger position equal to the broker's position;
- ticks run (distinct minutes recorded) vs ticks expected;
- in the last, uninterrupted stretch: RSS after warm-up and at the end (drift), thread and
  file-descriptor counts at both moments, DB sizes.

The short form (a few sessions, a few kills) runs in the test suite: tests/soak/.
The paper mode against the loopback emulator, with stream and trade-stream drops, 429/5xx
bursts and late/corrected bars on a schedule, is ``bench/soak_paper.py``. Remains to do
(issue 15): the hanging plugin, the window offscreen on the dashboard.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

START_DAY = date(2024, 3, 4)  # the 22 sessions from here include the DST change (Mar 10)


def sessions(days: int) -> list:
    from db.calendar import nyse

    cal = nyse()
    return cal.sessions_between(START_DAY - timedelta(days=10), START_DAY + timedelta(days=60))


def build(folder: Path, days: int, n_tickers: int) -> None:
    """Market DB: the history before START_DAY plus every session the soak trades."""
    from app.clock import ManualClock
    from app.marketdata.synthetic import SyntheticFeed
    from db.calendar import nyse
    from db.market import MarketStore

    cal = nyse()
    all_s = sessions(days)
    warm = [s for s in all_s if s.open.date() < START_DAY][-1:]
    trade = [s for s in all_s if s.open.date() >= START_DAY][:days]
    market = MarketStore(folder / "market.db", cal)
    gen = SyntheticFeed(market, ManualClock(warm[0].open), cal, seed=7)
    for i in range(n_tickers):
        t = f"S{i:02d}"
        rows = []
        for s in warm + trade:
            rows.extend((t, int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]),
                         int(r[5])) for r in gen.session_bars(t, s))
        market.insert_rows(rows)
    market.close()
    (folder / "plan.json").write_text(json.dumps(
        {"minutes": [int(m.timestamp()) for s in trade for m in s.minutes()]}))


def proc_stats() -> dict:
    rss = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
    return {"rss_mb": rss, "fds": len(os.listdir("/proc/self/fd")),
            "threads": threading.active_count()}


def child(folder: Path, n_algos: int, n_tickers: int) -> None:
    """One life of the app: open the DBs, start the engine (reconcile), tick until done."""
    from datetime import UTC, datetime

    from app.broker.simulated import SimulatedBroker
    from app.clock import ManualClock
    from app.engine.facade import Engine
    from db.calendar import nyse
    from db.market import MarketStore
    from db.system import SystemStore

    cal = nyse()
    minutes = json.loads((folder / "plan.json").read_text())["minutes"]
    progress = folder / "progress.log"
    done = set()
    if progress.exists():
        for line in progress.read_text().splitlines():
            if line.strip().isdigit():
                done.add(int(line))
    todo = [m for m in minutes if m > max(done, default=0)]
    if not todo:
        return
    first = datetime.fromtimestamp(todo[0], UTC)
    clock = ManualClock(first)
    market = MarketStore(folder / "market.db", cal)
    system = SystemStore(folder / "system.db")
    broker = SimulatedBroker(system, market, clock, starting_cash=1_000_000.0,
                             slippage_bps=1.0, calendar=cal)
    engine = Engine(mode="demo", system=system, market=market, broker=broker, feed=None,
                    clock=clock, calendar=cal, plugin_timeout=2.0)
    for i in range(len(system.list_algorithms()), n_algos):  # a kill may cut this short
        engine.create_algorithm("sma_crossover", f"S{i % n_tickers:02d}", 20_000)
    engine.start()
    with open(folder / "stats.log", "a", buffering=1) as stats, \
            open(progress, "a", buffering=1) as out:
        stats.write(json.dumps({"start": True, **proc_stats()}) + "\n")
        for i, ts in enumerate(todo):
            m = datetime.fromtimestamp(ts, UTC)
            clock.set(m + timedelta(seconds=2))
            engine.run_tick(m)
            out.write(f"{ts}\n")
            if i % 50 == 0:
                stats.write(json.dumps({"i": i, **proc_stats()}) + "\n")
        stats.write(json.dumps({"end": True, **proc_stats()}) + "\n")
    engine.close()
    system.close()
    market.close()


@dataclass
class Result:
    ticks_expected: int = 0
    ticks_run: int = 0
    ticks_repeated: int = 0
    kills: int = 0
    starts: int = 0
    orders: int = 0
    duplicate_intents: int = 0
    fills: int = 0
    fills_recorded_twice: int = 0
    ledger_vs_broker: dict = field(default_factory=dict)
    rss_warm_mb: int = 0
    rss_end_mb: int = 0
    fds: tuple = (0, 0)
    threads: tuple = (0, 0)
    db_mb: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        p = []
        if self.ticks_run != self.ticks_expected:
            p.append(f"ticks run {self.ticks_run} != expected {self.ticks_expected}")
        if self.duplicate_intents:
            p.append(f"{self.duplicate_intents} duplicate intents")
        if self.fills_recorded_twice:
            p.append(f"{self.fills_recorded_twice} fills recorded twice")
        if self.ledger_vs_broker:
            p.append(f"ledger != broker: {self.ledger_vs_broker}")
        if self.rss_end_mb - self.rss_warm_mb > 5:
            p.append(f"RSS drift {self.rss_end_mb - self.rss_warm_mb} MB > 5 MB")
        if self.fds[1] > self.fds[0] + 2:
            p.append(f"fds grew {self.fds}")
        if self.threads[1] > self.threads[0] + 1:
            p.append(f"threads grew {self.threads}")
        return p


def check(folder: Path, result: Result) -> Result:
    import sqlite3

    minutes = json.loads((folder / "plan.json").read_text())["minutes"]
    lines = [int(x) for x in (folder / "progress.log").read_text().split()]
    result.ticks_expected = len(minutes)
    result.ticks_run = len(set(lines) & set(minutes))
    result.ticks_repeated = len(lines) - len(set(lines))
    db = sqlite3.connect(folder / "system.db")
    result.orders = db.execute("SELECT count(*) FROM orders").fetchone()[0]
    result.duplicate_intents = db.execute(
        "SELECT count(*) FROM (SELECT algo_id, minute FROM orders WHERE algo_id IS NOT NULL "
        "GROUP BY algo_id, minute HAVING count(*) > 1)").fetchone()[0]
    result.fills = db.execute("SELECT count(*) FROM transactions").fetchone()[0]
    result.fills_recorded_twice = db.execute(
        "SELECT count(*) FROM (SELECT fill_id FROM transactions WHERE fill_id IS NOT NULL "
        "GROUP BY fill_id HAVING count(*) > 1)").fetchone()[0]
    ledger = dict(db.execute(
        "SELECT ticker, sum(CASE type WHEN 'buy' THEN shares WHEN 'sell' THEN -shares "
        "ELSE 0 END) FROM transactions GROUP BY ticker"))
    broker = dict(db.execute("SELECT ticker, qty FROM sim_positions"))
    for t in sorted(set(ledger) | set(broker)):
        if abs(float(ledger.get(t) or 0) - float(broker.get(t) or 0)) > 1e-9:
            result.ledger_vs_broker[t] = (ledger.get(t), broker.get(t))
    db.close()
    last = []
    for line in (folder / "stats.log").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("start"):
            last = []
        last.append(rec)
    if len(last) >= 2:
        warm = last[min(len(last) - 1, max(1, len(last) // 3))]  # a third in: warmed up
        end = last[-1]
        result.rss_warm_mb, result.rss_end_mb = warm["rss_mb"], end["rss_mb"]
        result.fds = (warm["fds"], end["fds"])
        result.threads = (warm["threads"], end["threads"])
    for name in ("system.db", "market.db"):
        p = folder / name
        result.db_mb[name] = round(sum(
            Path(f"{p}{x}").stat().st_size for x in ("", "-wal") if Path(f"{p}{x}").exists())
            / 1e6, 1)
    return result


def run(folder: Path, days: int = 3, kills: int = 3, n_algos: int = 20, n_tickers: int = 15,
        seed: int = 1, final_stretch: float = 0.3, log=print) -> Result:
    """Build, run the child with ``kills`` SIGKILLs at random moments, restart, check.
    The last ``final_stretch`` of the minutes runs uninterrupted (the memory figures)."""
    t0 = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    build(folder, days, n_tickers)
    total = len(json.loads((folder / "plan.json").read_text())["minutes"])
    rnd = random.Random(seed)
    # Kill points: minutes reached, spread over the first part of the run.
    points = sorted(rnd.sample(range(20, max(21 + kills, int(total * (1 - final_stretch)))),
                               kills))
    result = Result()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(folder),
           "--algos", str(n_algos), "--tickers", str(n_tickers)]
    progress = folder / "progress.log"

    def reached() -> int:
        try:
            return len(progress.read_text().split())
        except FileNotFoundError:
            return 0

    while True:
        result.starts += 1
        p = subprocess.Popen(cmd, env=env, cwd=ROOT)
        target = points[0] if points else None
        while p.poll() is None:
            if target is not None and reached() >= target:
                time.sleep(rnd.uniform(0, 0.05))  # a random moment inside a tick
                p.send_signal(signal.SIGKILL)
                p.wait()
                result.kills += 1
                points.pop(0)
                log(f"  SIGKILL {result.kills} after {reached()} ticks")
                break
            time.sleep(0.01)
        if p.returncode not in (0, -signal.SIGKILL):
            raise RuntimeError(f"the soak child failed with exit code {p.returncode}")
        if p.returncode == 0:
            break
    result.seconds = time.monotonic() - t0
    return check(folder, result)


def describe(r: Result) -> str:
    return "\n".join([
        f"soak: {r.ticks_run}/{r.ticks_expected} ticks run ({r.ticks_repeated} re-run after a "
        f"kill), {r.kills} SIGKILLs, {r.starts} starts, {r.seconds:.0f} s",
        f"  orders {r.orders}, duplicate intents {r.duplicate_intents}; fills {r.fills}, "
        f"recorded twice {r.fills_recorded_twice}",
        f"  ledger vs broker per ticker: {'equal' if not r.ledger_vs_broker else r.ledger_vs_broker}",
        f"  RSS after warm-up {r.rss_warm_mb} MB, at the end {r.rss_end_mb} MB "
        f"(drift {r.rss_end_mb - r.rss_warm_mb} MB); fds {r.fds[0]} -> {r.fds[1]}; "
        f"threads {r.threads[0]} -> {r.threads[1]}",
        f"  DB sizes: {r.db_mb}",
        "  checks: " + ("all passed" if not r.problems else "; ".join(r.problems)),
    ])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=22)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--algos", type=int, default=20)
    ap.add_argument("--tickers", type=int, default=15)
    ap.add_argument("--folder")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(Path(args.child), args.algos, args.tickers)
        return 0
    import tempfile

    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="soak-"))
    r = run(folder, args.days, args.kills, args.algos, args.tickers)
    print(describe(r))
    print(f"  data folder: {folder}")
    return 0 if not r.problems else 1


if __name__ == "__main__":
    sys.exit(main())
