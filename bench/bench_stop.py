"""Stop-all latency (the panic button) under load: median and p99 per case.

Cases: an idle engine (the floor), during a tick of 100 algorithms, during a tick whose plugin
never returns, while the broker times out (no answer for minutes), while the broker answers
503. Real SQLite files in a temporary folder, the real SimulatedBroker with a switch in front
of it that stalls or fails every call (an in-process broker has no network to lose); the last
two cases again through real alpaca-py (AlpacaBroker, its trade stream) against the loopback
emulator (tests/fakes/alpaca_emulator.py) with its faults: every trading request hanging past
the client's timeout, every request answered 503. Between
two measurements the algorithms are set running again directly (a bench shortcut, so that the
load keeps running: resuming through the API would re-create 100 plugin objects each time).

    .venv/bin/python bench/bench_stop.py [--reps 40]
Target (issue 10): p99 <= 1 s in every case.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.clock import ManualClock  # noqa: E402
from app.engine.facade import Engine  # noqa: E402
from db.calendar import nyse  # noqa: E402
from db.market import MarketStore  # noqa: E402
from db.system import SystemStore  # noqa: E402
from tests.engine.stalling_broker import StallingBroker  # noqa: E402

PLUGINS = ROOT / "tests" / "engine" / "plugins"
T0 = datetime(2024, 6, 4, 14, 0, tzinfo=UTC)


def stores(tmp: Path, tickers: tuple[str, ...]):
    """The calendar, the two DBs with a flat day of $100 bars for ``tickers``, the clock."""
    cal = nyse()
    system, market = SystemStore(tmp / "system.db"), MarketStore(tmp / "market.db", cal)
    rows = [(t, int(m.timestamp()), 100.0, 100.0, 100.0, 100.0, 1000)
            for t in tickers for m in cal.minutes_between(T0 - timedelta(days=1), T0)]
    market.insert_rows(rows)
    return cal, system, market, ManualClock(T0 + timedelta(seconds=2))


def build(tmp: Path, algos: int, plugin: str, params: dict, timeout: float):
    cal, system, market, clock = stores(tmp, ("AAA", "BBB"))
    broker = StallingBroker(system, market, clock, starting_cash=1e7, calendar=cal)
    broker.stall_seconds = 120.0
    e = Engine(mode="demo", system=system, market=market, broker=broker, feed=None, clock=clock,
               calendar=cal, plugin_dirs=[PLUGINS], plugin_timeout=timeout)
    e.start()
    for i in range(algos):
        e.create_algorithm(plugin if i == 0 else "scripted", "AAA" if i % 2 else "BBB", 1000,
                           params if i == 0 else {"action": "buy", "shares": 1, "delay": 0.01})
    return e, broker


def build_alpaca(tmp: Path, algos: int, emulator_box: list):
    """The engine on AlpacaBroker (alpaca-py) against a fresh loopback emulator."""
    from app.broker.alpaca import AlpacaBroker
    from tests.fakes.alpaca_emulator import AlpacaEmulator
    from tests.fakes.emulator_fixtures import make_settings

    cal, system, market, clock = stores(tmp, ("AAPL", "MSFT"))
    emu = AlpacaEmulator(now=clock.now, calendar=cal).start()
    emulator_box.append(emu)
    broker = AlpacaBroker.from_settings(
        make_settings(emu, tmp), request_timeout=2.0, backoff_base=0.2, backoff_max=1.0,
        rate_limit_wait=0.2, rate_limit_min=0.2, poll_interval=0.5, stream_backoff=0.2)
    e = Engine(mode="paper", system=system, market=market, broker=broker, feed=None,
               clock=clock, calendar=cal, plugin_dirs=[PLUGINS], plugin_timeout=2.0)
    e.start()
    for i in range(algos):
        e.create_algorithm("scripted", "AAPL" if i % 2 else "MSFT", 900,
                           {"action": "buy", "shares": 1, "delay": 0.01})
    return e, emu


def rearm(engine: Engine, instances: dict) -> None:
    with engine._lock:
        for a in engine._algos.values():
            a.status, a.error, a.instance = "running", None, instances.get(a.id)


def measure(name: str, reps: int, *, algos: int = 100, plugin: str = "scripted",
            params: dict | None = None, timeout: float = 2.0, fault: str = "",
            tick: bool = True) -> list[float]:
    with tempfile.TemporaryDirectory() as d:
        emus: list = []
        if fault.startswith("alpaca"):
            engine, emu = build_alpaca(Path(d), algos, emus)
            if fault == "alpaca-hang":
                emu.faults.hang_seconds = 3.0  # past the client's 2 s timeout, every request
            else:
                emu.faults.fail_status, emu.faults.fail_count = 503, 10**9
                emu.faults.fail_prefix = "/v2"
            broker = None
        else:
            engine, broker = build(Path(d), algos, plugin, params or {
                "action": "buy", "shares": 1, "delay": 0.01}, timeout)
            broker.stall, broker.fail = fault == "timeout", fault in ("timeout", "503")
        instances = {a.id: a.instance for a in engine._algos.values()}
        minute = T0
        out: list[float] = []
        th = None
        try:
            for _ in range(reps):
                if tick and (th is None or not th.is_alive()):
                    engine.clock.set(minute + timedelta(seconds=2))
                    th = threading.Thread(target=engine.run_tick, args=(minute,), daemon=True)
                    th.start()
                    minute += timedelta(minutes=1)
                    while not engine._tick_lock.locked() and th.is_alive():
                        time.sleep(0.001)
                    time.sleep(0.05)  # into the tick: plugins, polls or sends under way
                t0 = time.perf_counter()
                engine.stop_all()
                out.append(time.perf_counter() - t0)
                rearm(engine, instances)
                time.sleep(0.02)
        finally:
            if broker is not None:
                broker.release.set()
            for emu in emus:
                emu.faults.hang_seconds, emu.faults.fail_count = 0.0, 0
            engine.close()
            for emu in emus:
                emu.stop()
    return out


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=40)
    reps = ap.parse_args().reps
    cases = [
        ("idle engine (floor), 100 algorithms", dict(tick=False)),
        ("tick of 100 algorithms", {}),
        ("plugin that never returns", dict(plugin="sleeper", params={"seconds": 600},
                                           timeout=5.0)),
        ("broker times out", dict(fault="timeout")),
        ("broker answers 503", dict(fault="503")),
        ("Alpaca (alpaca-py, emulator) hangs", dict(fault="alpaca-hang")),
        ("Alpaca (alpaca-py, emulator) 503", dict(fault="alpaca-503")),
    ]
    floor = None
    rows = []
    print(f"stop_all latency, {reps} calls per case (ms)")
    for name, kw in cases:
        xs = measure(name, reps, **kw)
        med, p99 = statistics.median(xs) * 1000, pct(xs, 99) * 1000
        floor = floor or p99
        rows.append((name, med, p99, max(xs) * 1000))
    print(f"{'case':40s} {'median':>9s} {'p99':>9s} {'max':>9s} {'p99/floor':>10s}")
    for name, med, p99, mx in rows:
        print(f"{name:40s} {med:9.2f} {p99:9.2f} {mx:9.2f} {p99 / floor:10.1f}"
              f"{'' if p99 <= 1000 else '  MISSED (p99 > 1 s)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
