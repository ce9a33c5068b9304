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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO

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
    todo = minutes_left(folder, minutes)
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
    with life_logs(folder) as (stats, out):
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


def minutes_left(folder: Path, minutes: list[int]) -> list[int]:
    """The planned minutes after the last one a former life recorded in its progress log."""
    progress = folder / "progress.log"
    done = [int(x) for x in progress.read_text().split() if x.isdigit()] \
        if progress.exists() else []
    return [m for m in minutes if m > max(done, default=0)]


@contextmanager
def life_logs(folder: Path) -> Iterator[tuple[TextIO, TextIO]]:
    """A life's stats log (its first record: the start, with the process's figures) and
    progress log (a minute a line once ticked), both appended to and line-buffered, so a
    SIGKILL loses at most the line being written."""
    with open(folder / "stats.log", "a", buffering=1) as stats, \
            open(folder / "progress.log", "a", buffering=1) as out:
        stats.write(json.dumps({"start": True, **proc_stats()}) + "\n")
        yield stats, out


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

    count_ticks(folder, json.loads((folder / "plan.json").read_text())["minutes"], result)
    db = sqlite3.connect(folder / "system.db")
    count_orders(db, result)
    compare_positions(ledger(db), dict(db.execute("SELECT ticker, qty FROM sim_positions")),
                      result)
    db.close()
    read_stretch(last_life(folder), result)
    for name in ("system.db", "market.db"):
        result.db_mb[name] = db_mb(folder / name)
    return result


# --- the checks and the kill loop bench/soak_paper.py shares ------------------------------
def count_ticks(folder: Path, minutes: list[int], result: Result) -> list[int]:
    """Ticks expected, run (distinct planned minutes recorded) and re-run after a kill, from
    the child's progress log; returns the minutes recorded."""
    lines = [int(x) for x in (folder / "progress.log").read_text().split()]
    result.ticks_expected = len(minutes)
    result.ticks_run = len(set(lines) & set(minutes))
    result.ticks_repeated = len(lines) - len(set(lines))
    return lines


def count_orders(db, result: Result) -> None:
    """Orders and fills the app recorded in its system DB (``db``: a sqlite3 connection), and
    the intents and fills recorded twice."""
    result.orders = db.execute("SELECT count(*) FROM orders").fetchone()[0]
    result.duplicate_intents = db.execute(
        "SELECT count(*) FROM (SELECT algo_id, minute FROM orders WHERE algo_id IS NOT NULL "
        "GROUP BY algo_id, minute HAVING count(*) > 1)").fetchone()[0]
    result.fills = db.execute("SELECT count(*) FROM transactions").fetchone()[0]
    result.fills_recorded_twice = db.execute(
        "SELECT count(*) FROM (SELECT fill_id FROM transactions WHERE fill_id IS NOT NULL "
        "GROUP BY fill_id HAVING count(*) > 1)").fetchone()[0]


def ledger(db) -> dict:
    """Per ticker, the shares the algorithms' transactions add up to (buys +, sells -)."""
    return dict(db.execute(
        "SELECT ticker, sum(CASE type WHEN 'buy' THEN shares WHEN 'sell' THEN -shares "
        "ELSE 0 END) FROM transactions GROUP BY ticker"))


def compare_positions(books: dict, broker: dict, result: Result) -> None:
    """Each ticker whose ledger position differs from the broker's, into the result."""
    for t in sorted(set(books) | set(broker)):
        if abs(float(books.get(t) or 0) - float(broker.get(t) or 0)) > 1e-9:
            result.ledger_vs_broker[t] = (books.get(t), broker.get(t))


def last_life(folder: Path) -> list[dict]:
    """The stats records of the child's last life (since its last start)."""
    stretch: list[dict] = []
    for line in (folder / "stats.log").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("start"):
            stretch = []
        stretch.append(rec)
    return stretch


def read_stretch(stretch: list[dict], result: Result) -> tuple[dict, dict] | None:
    """RSS, fds and threads after warm-up (a third in) and at the end of the last life, into
    the result; returns those two records (None when the life left fewer than two)."""
    if len(stretch) < 2:
        return None
    warm = stretch[min(len(stretch) - 1, max(1, len(stretch) // 3))]
    end = stretch[-1]
    result.rss_warm_mb, result.rss_end_mb = warm["rss_mb"], end["rss_mb"]
    result.fds = (warm["fds"], end["fds"])
    result.threads = (warm["threads"], end["threads"])
    return warm, end


def db_mb(path: Path) -> float:
    """A DB's size with its WAL, in MB."""
    return round(sum(Path(f"{path}{x}").stat().st_size for x in ("", "-wal")
                     if Path(f"{path}{x}").exists()) / 1e6, 1)


def kill_points(rnd: random.Random, total: int, kills: int, final_stretch: float) -> list[int]:
    """Ticks reached at which to kill the child, spread over the minutes before the last,
    uninterrupted ``final_stretch`` of the run."""
    return sorted(rnd.sample(range(20, max(21 + kills, int(total * (1 - final_stretch)))),
                             kills))


def run_lives(script: Path, folder: Path, n_algos: int, n_tickers: int, points: list[int],
              rnd: random.Random, result: Result, log=print) -> None:
    """Start ``script --child folder`` and SIGKILL it once it has recorded each of
    ``points`` ticks (at a random moment inside the next), restarting it as systemd would,
    until a life ends by itself."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(script), "--child", str(folder),
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
            return


def run(folder: Path, days: int = 3, kills: int = 3, n_algos: int = 20, n_tickers: int = 15,
        seed: int = 1, final_stretch: float = 0.3, log=print) -> Result:
    """Build, run the child with ``kills`` SIGKILLs at random moments, restart, check.
    The last ``final_stretch`` of the minutes runs uninterrupted (the memory figures)."""
    t0 = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    build(folder, days, n_tickers)
    total = len(json.loads((folder / "plan.json").read_text())["minutes"])
    rnd = random.Random(seed)
    points = kill_points(rnd, total, kills, final_stretch)
    result = Result()
    run_lives(Path(__file__).resolve(), folder, n_algos, n_tickers, points, rnd, result, log)
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


def soak_main(doc: str, child_fn, soak_fn, describe_fn, *, days: int, kills: int,
              prefix: str, more_args=None) -> int:
    """The command line both soaks share: ``--child FOLDER`` runs one life of the app (the
    parent starts it so), else ``soak_fn(folder, args)`` runs the soak and its result is
    printed; exit 1 when a check failed. ``more_args(parser)`` adds a soak's own options."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--days", type=int, default=days)
    ap.add_argument("--kills", type=int, default=kills)
    ap.add_argument("--algos", type=int, default=20)
    ap.add_argument("--tickers", type=int, default=15)
    if more_args:
        more_args(ap)
    ap.add_argument("--folder")
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child_fn(Path(args.child), args.algos, args.tickers)
        return 0
    import tempfile

    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix=prefix))
    r = soak_fn(folder, args)
    print(describe_fn(r))
    print(f"  data folder: {folder}")
    return 0 if not r.problems else 1


def main() -> int:
    return soak_main(__doc__, child, lambda folder, a: run(folder, a.days, a.kills, a.algos,
                                                           a.tickers),
                     describe, days=22, kills=20, prefix="soak-")


if __name__ == "__main__":
    sys.exit(main())
