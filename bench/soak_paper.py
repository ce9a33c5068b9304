"""Endurance in paper mode: the app against the loopback Alpaca emulator, faults on a schedule.

    .venv/bin/python bench/soak_paper.py [--days 5] [--kills 10] [--algos 20] [--tickers 15]
        [--start 2024-03-04]

The parent runs the emulator (tests/fakes/alpaca_emulator.py, 127.0.0.1, the broker's state
lives there as it does at Alpaca) and a driver that follows the app's clock; a child process
runs the app's paper stack (``AlpacaBroker``, ``AlpacaStream`` with its gap ``Backfiller``,
the engine with the seed-style plugin in its worker processes) on a manual clock, minute by
minute through ``--days`` sessions from ``--start`` (2024-03-04: the DST change of Mar 10 after
five sessions; 2024-10-28 with 24 days: the DST change of Nov 3, Thanksgiving and the Nov 29
half day), as fast as it goes. Each minute the child publishes its
clock; the driver then sends the closed minute's bars on the market stream, and on a schedule
of simulated minutes (``fault_plan``):

- every 20 minutes the market stream is dropped before the minute's bars (they are lost on
  the stream: the gap filler must fetch them over REST);
- every 45 minutes the trade-updates stream is dropped (fills arrive while it reconnects;
  the order poll and the restart reconciliation must still record each once);
- every 60 minutes a burst of three 429s, every 60 (offset 30) three 503s on the next REST
  requests (orders, reads, history alike);
- every 15 minutes one ticker's bar is late: the ``b`` bar leaves its last trade out and a
  ``u`` correction follows after the :30 mark (stored, the late correction wins);
- ``--kills`` SIGKILLs at random moments, each followed by a restart (as systemd would).

At the end (``check_paper``): orders the app recorded vs orders the emulator received (no
client order id sent twice, no intent sent for a minute other than its own), every fill
recorded exactly once and each order's recorded shares equal to the emulator's filled
quantity, each ticker's ledger (sum of the algorithms' transactions) equal to the emulator's
position, no minute the emulator has a bar for missing from the market DB, ticks run vs
expected, RSS after warm-up and at the end, threads and file descriptors, DB sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.soak import (  # noqa: E402
    START_DAY,
    Result,
    compare_positions,
    count_orders,
    count_ticks,
    db_mb,
    kill_points,
    last_life,
    ledger,
    life_logs,
    minutes_left,
    proc_stats,
    read_stretch,
    run_lives,
    soak_main,
)

# Real timeouts scaled to a run where a simulated minute lasts a fraction of a second; the
# same knobs the Alpaca tests use (tests/broker/test_broker.py and test_stream.py FAST).
BROKER_FAST = dict(backoff_base=0.01, backoff_max=0.05, rate_limit_wait=0.01,
                   rate_limit_min=0.05, poll_interval=0.2, stale_after=0.5,
                   stream_backoff=0.05, stream_auth_retry=0.5)
STREAM_FAST = dict(recv_timeout=0.05, backoff_base=0.02, backoff_max=0.1, limit_retry=0.3,
                   auth_retry=0.3, silence_timeout=60.0, gap_delay=0.0, ping_interval=0.5,
                   pong_timeout=2.0)
BAR_WAIT = 3.0  # seconds the child waits for a minute's bars before ticking without them

# Plugins of the soak beside the seed-style one: one that fails now and then (raises every
# 37th minute), one that hangs once a day (at 11:00 New York it sleeps past the time limit:
# its worker process is killed and replaced, the other algorithms' minute goes on).
SOAK_PLUGINS = {
    "soak_flaky.py": '''
from algorithm.sma_crossover import Algorithm as Sma


class Algorithm(Sma):
    def run(self, current_time, algo_id):
        if int(current_time.timestamp()) // 60 % 37 == 0:
            raise RuntimeError("soak: a plugin failing now and then")
        return super().run(current_time, algo_id)
''',
    "soak_hang.py": '''
import time
from zoneinfo import ZoneInfo

from algorithm.sma_crossover import Algorithm as Sma

NEW_YORK = ZoneInfo("America/New_York")


class Algorithm(Sma):
    def run(self, current_time, algo_id):
        if current_time.astimezone(NEW_YORK).strftime("%H:%M") == "11:00":
            time.sleep(10)  # past the 2 s limit: the engine kills this worker
        return super().run(current_time, algo_id)
''',
}


def plugin_for(i: int, n_algos: int) -> str:
    """The seed-style plugin for most; the last three: two flaky, one hanging."""
    if n_algos >= 5 and i == n_algos - 1:
        return "soak_hang"
    if n_algos >= 5 and i >= n_algos - 3:
        return "soak_flaky"
    return "sma_crossover"


def trade_minutes(days: int, start: date = START_DAY) -> list[int]:
    from db.calendar import nyse

    cal = nyse()
    out: list[int] = []
    for s in cal.sessions_between(start, start + timedelta(days=2 * days + 10))[:days]:
        out.extend(int(m.timestamp()) for m in s.minutes())
    return out


def fault_plan(k: int) -> list[str]:
    """The faults due at the ``k``-th minute of a session (before that minute's bars)."""
    out = []
    if k and k % 20 == 0:
        out.append("drop_market")
    if k and k % 45 == 0:
        out.append("drop_trade")
    if k and k % 60 == 0:
        out.append("429")
    if k % 60 == 30:
        out.append("503")
    if k % 15 == 7:
        out.append("late")
    return out


# --- the child: one life of the app ------------------------------------------------------
def child(folder: Path, n_algos: int, n_tickers: int) -> None:
    from app.broker.alpaca import AlpacaBroker
    from app.clock import ManualClock
    from app.config import load_settings
    from app.engine.facade import Engine
    from app.marketdata.backfill import Backfiller
    from app.marketdata.stream import AlpacaStream
    from db.calendar import nyse
    from db.market import MarketStore
    from db.system import SystemStore

    cal = nyse()
    plan = json.loads((folder / "plan.json").read_text())
    minutes, tickers = plan["minutes"], plan["tickers"]
    todo = minutes_left(folder, minutes)
    if not todo:
        return
    clock = ManualClock(datetime.fromtimestamp(todo[0], UTC))
    publish_clock(folder, todo[0] - 58)  # the emulator's "now" while the app starts
    settings = load_settings(path=folder / "absent.toml", env={},
                             overrides=dict(plan["settings"], mode="paper",
                                            data_dir=str(folder / "data")))
    market = MarketStore(settings.market_db_path, cal)
    system = SystemStore(settings.system_db_path)
    broker = AlpacaBroker.from_settings(settings, **BROKER_FAST)
    backfill = Backfiller(settings, market, cal, clock=clock, rate_limit_wait=0.01,
                          rate_limit_min=0.05, error_wait=0.05)
    feed = AlpacaStream(settings, market, cal, clock=clock, backfiller=backfill, **STREAM_FAST)
    engine = Engine(mode="paper", system=system, market=market, broker=broker, feed=feed,
                    clock=clock, calendar=cal, plugin_timeout=2.0,
                    plugin_dirs=[folder / "plugins"])
    engine.start()
    for i in range(len(system.list_algorithms()), n_algos):  # a kill may cut this short
        engine.create_algorithm(plugin_for(i, n_algos), tickers[i % n_tickers], 20_000)
    waited_out = 0
    problems = {"raised": 0, "took longer": 0}
    plan_set = set(minutes)
    with life_logs(folder) as (stats, out):
        for i, ts in enumerate(todo):
            m = datetime.fromtimestamp(ts, UTC)
            clock.set(m + timedelta(seconds=2))
            publish_clock(folder, ts + 2)
            # Only the tickers a running algorithm trades are subscribed (one stopped by
            # a risk guard is unsubscribed, its ticker's bars no longer come).
            wanted = {a["ticker"] for a in system.list_algorithms(("running",))}
            if not wait_for_bars(market, sorted(wanted), ts - 60, cal):
                waited_out += 1
            r = engine.run_tick(m)
            if ts + 60 not in plan_set:  # the session's last minute: its bar comes at the close
                publish_clock(folder, ts + 62)
                wait_for_bars(market, sorted(wanted), ts, cal)
            for why in r.errors.values():
                for k in problems:
                    problems[k] += k in why
            out.write(f"{ts}\n")
            if i % 50 == 0:
                extra = ({"fd_targets": fd_targets(), "db_threads": db_threads(system, market)}
                         if i == 50 else {})
                stats.write(json.dumps({"i": i, "day": m.date().isoformat(),
                                        "bars_waited_out": waited_out, **extra,
                                        **db_conns(system, market),
                                        **proc_stats()}) + "\n")
        feed.wait_idle(10.0)
        stats.write(json.dumps({"end": True, "bars_waited_out": waited_out,
                                "plugin_problems": problems, "fd_targets": fd_targets(),
                                "db_threads": db_threads(system, market),
                                **db_conns(system, market),
                                **proc_stats()}) + "\n")
    publish_clock(folder, todo[-1] + 62)
    engine.close()
    system.close()
    market.close()


def fd_targets() -> list[str]:
    """What this process's file descriptors point at (files, sockets, pipes), sorted: the
    stats keep them at the 50th minute and at the end of each life, so a step in the fd
    count can be read off."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}").split(":[")[0])
        except OSError:
            pass
    return sorted(out)


def db_threads(*stores) -> dict[str, list[str]]:
    """Per DB file, the thread holding each open connection (its name, or the OS's name and
    "ended" when the thread is gone but its connection is still open)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, list[str]] = {}
    for store in stores:
        held = []
        for tid in list(store._tl._by_thread):
            try:
                comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
            except OSError:
                comm = "ended"
            held.append(f"{names.get(tid, '?')} ({comm})")
        out[Path(store._tl.path).name] = sorted(held)
    return out


def db_conns(*stores) -> dict[str, int]:
    """DB connections open now: of live threads, and of ended ones (not closed yet: a store
    closes those when it next opens a connection, db/connection.py)."""
    live = ended = 0
    for store in stores:
        for tid in list(store._tl._by_thread):
            if os.path.exists(f"/proc/self/task/{tid}"):
                live += 1
            else:
                ended += 1
    return {"db_conns": live, "db_conns_ended": ended}


def publish_clock(folder: Path, ts: int) -> None:
    tmp = folder / "clock.tmp"
    tmp.write_text(str(ts))
    os.replace(tmp, folder / "clock")


def wait_for_bars(market, tickers: list[str], ts: int, cal) -> bool:
    """Until every ticker's bar of minute ``ts`` is stored (from the stream or the gap
    filler); False after ``BAR_WAIT`` s. The session's first minute has none before it."""
    if not cal.is_open(datetime.fromtimestamp(ts, UTC)):
        return True
    deadline = time.monotonic() + BAR_WAIT
    while time.monotonic() < deadline:
        if all((market.latest_ts(t) or 0) >= ts for t in tickers):
            return True
        time.sleep(0.002)
    return False


# --- the parent: the emulator, the driver, the kills ---------------------------------------
@dataclass
class PaperResult(Result):
    orders_sent: int = 0
    duplicate_cids_at_broker: int = 0
    fills_vs_broker: dict = field(default_factory=dict)
    missing_minutes: int = 0
    missing_examples: list = field(default_factory=list)
    faults: dict = field(default_factory=dict)
    bars_waited_out: int = 0
    plugin_problems: dict = field(default_factory=dict)  # last stretch: raised / hung calls
    shares_mismatch: dict = field(default_factory=dict)
    sent_late: int = 0
    stopped: list = field(default_factory=list)  # algorithms stopped (risk guards), why
    fds_new: list = field(default_factory=list)  # fds open at the end, not at minute 50
    db_threads: tuple = ({}, {})  # threads holding a DB connection: minute 50, the end
    db_conns: tuple = (0, 0)  # DB connections of live threads: after warm-up, the end
    db_conns_ended: int = 0  # connections of ended threads still open at the end
    bars_differing: int = 0
    bars_differing_examples: list = field(default_factory=list)

    @property
    def fds_beside_db(self) -> tuple[int, int]:
        """fds other than those of DB connections of live threads (two each: the file and its
        WAL). A long-lived thread opens its connection the first time it writes (the order
        poll: the first update it finds while the trade stream is down, any day of the run),
        a step that is not a leak: one connection per live thread, closed when it ends."""
        return (self.fds[0] - 2 * self.db_conns[0], self.fds[1] - 2 * self.db_conns[1])

    @property
    def problems(self) -> list[str]:
        p = [x for x in super().problems if not x.startswith("fds grew")]
        a, b = self.fds_beside_db
        if b > a + 2:
            p.append(f"fds grew {self.fds} ({a} -> {b} beside live threads' DB connections)")
        if self.db_conns_ended:
            p.append(f"{self.db_conns_ended} DB connections of ended threads still open")
        if self.duplicate_cids_at_broker:
            p.append(f"{self.duplicate_cids_at_broker} client order ids sent twice")
        if self.shares_mismatch:
            p.append(f"recorded shares != broker's filled qty: {self.shares_mismatch}")
        if self.sent_late:
            p.append(f"{self.sent_late} orders reached the broker > 30 s after their minute")
        if self.bars_differing:
            p.append(f"{self.bars_differing} stored bars differ from the emulator's, e.g. "
                     f"{self.bars_differing_examples[:3]}")
        if self.missing_minutes:
            p.append(f"{self.missing_minutes} stored minutes missing, e.g. "
                     f"{self.missing_examples[:3]}")
        return p


class Driver(threading.Thread):
    """Follows the child's clock file: the emulator's ``now``, each closed minute's bars on
    the market stream, the corrections after :30, the scheduled faults."""

    def __init__(self, folder: Path, emu, minutes: list[int], tickers: list[str]) -> None:
        super().__init__(name="soak-driver", daemon=True)
        self.folder, self.emu, self.tickers = folder, emu, tickers
        self.now_ts = minutes[0] - 60
        self.sent: set[int] = set()
        self.session_start = {}
        from db.calendar import nyse

        cal = nyse()
        for m in minutes:
            s = cal.session_at(datetime.fromtimestamp(m, UTC))
            self.session_start[m] = int(s.open.timestamp())
        self.faults: dict[str, int] = {}
        self.stop = threading.Event()
        self.rnd = random.Random(11)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ts, UTC)

    def run(self) -> None:
        path = self.folder / "clock"
        while not self.stop.wait(0.002):
            try:
                ts = int(path.read_text())
            except (OSError, ValueError):
                continue
            self.now_ts = ts
            bar_minute = ts // 60 * 60 - 60  # the minute that closed
            if bar_minute in self.sent or bar_minute not in self.session_start:
                continue
            self.sent.add(bar_minute)
            self.emu.emit_corrections()
            k = (bar_minute + 60 - self.session_start[bar_minute]) // 60
            for f in fault_plan(k):
                self.apply(f, bar_minute)
            self.emu.emit_minute(bar_minute)

    def apply(self, fault: str, bar_minute: int) -> None:
        emu, f = self.emu, self.emu.faults
        self.faults[fault] = self.faults.get(fault, 0) + 1
        if fault == "drop_market":
            emu.drop_market_connections()
        elif fault == "drop_trade":
            emu.drop_trade_connections()
        elif fault in ("429", "503"):
            with emu.lock:
                f.fail_status, f.fail_count, f.fail_prefix = int(fault), 3, "/v"
        elif fault == "late":
            f.late.add((self.rnd.choice(self.tickers), bar_minute))


def run(folder: Path, days: int = 2, kills: int = 3, n_algos: int = 20, n_tickers: int = 15,
        seed: int = 1, final_stretch: float = 0.3, log=print,
        start: date = START_DAY) -> PaperResult:
    from tests.fakes.alpaca_emulator import AlpacaEmulator

    t0 = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugins").mkdir(exist_ok=True)
    for name, text in SOAK_PLUGINS.items():
        (folder / "plugins" / name).write_text(text.lstrip())
    minutes = trade_minutes(days, start)
    tickers = [f"S{i:02d}" for i in range(n_tickers)]
    driver_box: list[Driver] = []
    emu = AlpacaEmulator(now=lambda: driver_box[0].now(), cash=20_000.0 * n_algos + 1)
    for t in tickers:
        emu.add_asset(t)
    emu.faults.rate_limit_reset_in = 0.2
    emu.start()
    driver = Driver(folder, emu, minutes, tickers)
    driver_box.append(driver)
    driver.start()
    (folder / "plan.json").write_text(json.dumps(
        {"minutes": minutes, "tickers": tickers, "settings": emu.setting_values()}))
    rnd = random.Random(seed)
    points = kill_points(rnd, len(minutes), kills, final_stretch)
    result = PaperResult()
    try:
        run_lives(Path(__file__).resolve(), folder, n_algos, n_tickers, points, rnd, result,
                  log)
        time.sleep(0.5)  # the last fills' timers
    finally:
        driver.stop.set()
        emu.stop()
    result.seconds = time.monotonic() - t0
    result.faults = dict(driver.faults)
    return check_paper(folder, result, emu, minutes, tickers)


def check_paper(folder: Path, result: PaperResult, emu, minutes: list[int],
                tickers: list[str]) -> PaperResult:
    import sqlite3

    data = folder / "data"
    lines = count_ticks(folder, minutes, result)
    system = next(data.rglob("system.db"))
    market = next(data.rglob("market.db"))
    _check_orders(system, emu, result)
    sdb = sqlite3.connect(system)
    running = {r[0] for r in sdb.execute("SELECT ticker FROM algorithms WHERE status = 'running'")}
    result.stopped = [f"{r[0]} {r[1]}: {r[2]}" for r in sdb.execute(
        "SELECT id, ticker, error FROM algorithms WHERE status = 'stopped'")]
    sdb.close()
    _check_bars(market, emu, minutes, tickers, max(lines), running, result)
    stretch = last_life(folder)
    ends = read_stretch(stretch, result)
    if ends:
        warm, end = ends
        result.bars_waited_out = end.get("bars_waited_out", 0)
        early = next((r["fd_targets"] for r in stretch if "fd_targets" in r and "i" in r), [])
        grown = list(end.get("fd_targets", []))
        for x in early:
            if x in grown:
                grown.remove(x)
        result.fds_new = grown
        result.db_threads = (next((r["db_threads"] for r in stretch if "db_threads" in r
                                   and "i" in r), {}), end.get("db_threads", {}))
        result.db_conns = (warm.get("db_conns", 0), end.get("db_conns", 0))
        result.db_conns_ended = end.get("db_conns_ended", 0)
        result.plugin_problems = end.get("plugin_problems", {})
    for p in (system, market):
        result.db_mb[p.name] = db_mb(p)
    return result


def _check_orders(system: Path, emu, result: PaperResult) -> None:
    """The app's orders and fills against what the emulator received and filled."""
    import sqlite3

    from db.timeutil import parse_iso

    db = sqlite3.connect(system)
    count_orders(db, result)
    with emu.lock:
        orders = list(emu.orders.values())
        positions = {s: q for s, (q, _) in emu.positions.items()}
    result.orders_sent = len(orders)
    cids = [o["client_order_id"] for o in orders]
    result.duplicate_cids_at_broker = len(cids) - len(set(cids))
    # Netted orders (several algorithms, one ticker, one minute) point at the order sent
    # through ``parent``; their transactions add up (buys +, sells -) to what it filled.
    recorded = {cid: float(q or 0) for cid, q in db.execute(
        "SELECT coalesce(o.parent, o.client_order_id), sum(CASE t.type WHEN 'buy' THEN "
        "t.shares ELSE -t.shares END) FROM transactions t JOIN orders o ON o.id = t.order_id "
        "GROUP BY 1")}
    minute_of = dict(db.execute("SELECT client_order_id, minute FROM orders"))
    for o in orders:
        m = minute_of.get(o["client_order_id"])
        if m is None or (parse_iso(o["submitted_at"]) - parse_iso(m)).total_seconds() > 30:
            result.sent_late += 1  # not the app's, or sent after its minute (stale)
        filled = float(o["filled_qty"] or 0) * (1 if o["side"] == "buy" else -1)
        got = recorded.get(o["client_order_id"], 0.0)
        if abs(filled - got) > 1e-9:
            result.shares_mismatch[o["client_order_id"]] = (got, filled)
    compare_positions(ledger(db), positions, result)
    db.close()


def _check_bars(market: Path, emu, minutes: list[int], tickers: list[str], last: int,
                running: set[str], result: PaperResult) -> None:
    """Every minute the emulator has a bar for, up to the last tick, is stored, and as the
    emulator has it in the end (a late trade's correction replaced the first bar)."""
    import sqlite3

    mdb = sqlite3.connect(market)
    for t in tickers:
        have = {r[0]: r[1:] for r in mdb.execute(
            "SELECT ts, o, h, l, c, v FROM bars WHERE ticker = ? AND ts >= ? AND ts < ?",
            (t, minutes[0], last))}
        # A ticker whose algorithms were all stopped (a risk guard) is unsubscribed: its
        # minutes count up to its last stored bar only.
        until = last if t in running else max(have, default=0) + 1
        for m in (m for m in minutes if m < until):
            b = emu.bar(t, m)
            got = have.get(m)
            if b is None:
                continue
            if got is None:
                result.missing_minutes += 1
                if len(result.missing_examples) < 5:
                    result.missing_examples.append((t, _hm(m)))
            elif got != (b["o"], b["h"], b["l"], b["c"], b["v"]):
                result.bars_differing += 1
                if len(result.bars_differing_examples) < 5:
                    result.bars_differing_examples.append((t, _hm(m), got, b))
    mdb.close()


def _hm(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def describe(r: PaperResult) -> str:
    return "\n".join([
        f"paper soak: {r.ticks_run}/{r.ticks_expected} ticks run ({r.ticks_repeated} re-run "
        f"after a kill), {r.kills} SIGKILLs, {r.starts} starts, {r.seconds:.0f} s",
        f"  faults: {r.faults}; minutes whose bars came later than {BAR_WAIT:g} s in the "
        f"last stretch: {r.bars_waited_out}; plugin calls in the last stretch that raised / "
        f"hung: {r.plugin_problems}",
        f"  orders recorded {r.orders}, received by the emulator {r.orders_sent}, client ids "
        f"sent twice {r.duplicate_cids_at_broker}, duplicate intents {r.duplicate_intents}, "
        f"sent > 30 s after their minute {r.sent_late}",
        f"  fills {r.fills}, recorded twice {r.fills_recorded_twice}; recorded shares vs "
        f"filled qty: {'equal' if not r.shares_mismatch else r.shares_mismatch}",
        f"  ledger vs emulator position per ticker: "
        f"{'equal' if not r.ledger_vs_broker else r.ledger_vs_broker}",
        f"  stored minutes missing: {r.missing_minutes} {r.missing_examples[:3]}; stored bars "
        f"differing from the emulator's final bar: {r.bars_differing}",
        f"  RSS after warm-up {r.rss_warm_mb} MB, at the end {r.rss_end_mb} MB "
        f"(drift {r.rss_end_mb - r.rss_warm_mb} MB); fds {r.fds[0]} -> {r.fds[1]}; "
        f"threads {r.threads[0]} -> {r.threads[1]}; fds opened since minute 50 and still "
        f"open: {r.fds_new}",
        f"  DB connections of live threads {r.db_conns[0]} -> {r.db_conns[1]}, of ended "
        f"threads at the end {r.db_conns_ended}; fds beside them {r.fds_beside_db[0]} -> "
        f"{r.fds_beside_db[1]}",
        f"  DB connections' threads at minute 50: {r.db_threads[0]}",
        f"  DB connections' threads at the end: {r.db_threads[1]}",
        f"  DB sizes: {r.db_mb}",
        f"  algorithms stopped: {len(r.stopped)} {r.stopped[:3]}",
        "  checks: " + ("all passed" if not r.problems else "; ".join(r.problems)),
    ])


def main() -> int:
    def start_arg(ap: argparse.ArgumentParser) -> None:
        ap.add_argument(
            "--start", type=date.fromisoformat, default=START_DAY,
            help="first session (default 2024-03-04: the DST change after 5 sessions; "
                 "2024-10-28 with --days 24: the DST change and the Nov 29 half day)")

    return soak_main(__doc__, child, lambda folder, a: run(folder, a.days, a.kills, a.algos,
                                                           a.tickers, start=a.start),
                     describe, days=5, kills=10, prefix="soak-paper-", more_args=start_arg)


if __name__ == "__main__":
    sys.exit(main())
