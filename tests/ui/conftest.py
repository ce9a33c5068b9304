"""UI fixtures: a real demo engine (SQLite files in tmp_path, the synthetic market, the
simulated broker, the real calendar) on a ManualClock, and the real window on it.

The broker is told which symbols exist (its ``symbols`` option) so that an unknown ticker is
refused the way a real broker refuses it. Time is a ManualClock so a test decides when bars
and ticks happen; the PIN lockout and idle lock read injected time functions.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QSG_RENDER_LOOP", "basic")

KNOWN_SYMBOLS = {"AAPL", "MSFT", "NVDA", "TSLA", "AMZN"}
# 10:30 New York time on an ordinary Tuesday.
SESSION_TIME = datetime(2024, 3, 5, 15, 30, tzinfo=UTC)
PIN = "246813"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"

BUY_ONCE = '''
"""Test plugin: buys 10 shares on its first run, then holds."""
from db import get_transactions


class Algorithm:
    shares = 10

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker

    def run(self, current_time, algo_id):
        if not get_transactions(algo_id):
            return ("buy", self.shares)
        return ("hold", 0)
'''


class FakeTime:
    """Seconds that move only when a test says so (PIN lockout, idle lock)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class SteppedClock:
    """A ManualClock whose sleepers wait for the test to move time.

    ``ManualClock.sleep_until`` jumps the clock forward itself, which suits one driver; here
    the synthetic feed's own thread also sleeps on the clock, and must not run time away. It
    wakes when a test ``advance``s or ``set``s past its target, or when stopped.
    """

    def __init__(self, start: datetime) -> None:
        from app.clock import ManualClock

        self._clock = ManualClock(start)
        self._moved = threading.Condition()

    speed = 1.0

    def now(self) -> datetime:
        return self._clock.now()

    def set(self, t: datetime) -> None:
        with self._moved:
            self._clock.set(t)
            self._moved.notify_all()

    def advance(self, **kwargs: float) -> None:
        with self._moved:
            self._clock.advance(**kwargs)
            self._moved.notify_all()

    def sleep_until(self, t: datetime, stop: threading.Event | None = None) -> bool:
        with self._moved:
            while self._clock.now() < t:
                if stop is not None and stop.is_set():
                    return False
                self._moved.wait(0.05)
        return not (stop is not None and stop.is_set())


CRASHES = '''
"""Test plugin: its run() raises, which the engine refuses and shows on the card."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        raise ValueError("no idea what to do")
'''


@dataclass
class Rig:
    engine: Any
    scheduler: Any
    clock: Any
    feed: Any
    settings: Any
    data_dir: Path

    def in_thread(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on another thread, as the scheduler or feed would, and wait for it."""
        out: dict[str, Any] = {}

        def target() -> None:
            try:
                out["value"] = fn()
            except BaseException as e:  # noqa: BLE001 - re-raised below
                out["error"] = e

        t = threading.Thread(target=target)
        t.start()
        t.join(30)
        if "error" in out:
            raise out["error"]
        return out.get("value")


def make_rig(data_dir: Path, clock: Any = None, plugin_dir: Path | None = None) -> Rig:
    from app.broker.simulated import SimulatedBroker
    from app.config import load_settings
    from app.engine.facade import Engine
    from app.engine.scheduler import Scheduler
    from app.marketdata.synthetic import SyntheticFeed
    from db.calendar import nyse
    from db.market import MarketStore
    from db.system import SystemStore

    cal = nyse()
    clock = clock or SteppedClock(SESSION_TIME)
    settings = load_settings(overrides={"data_dir": str(data_dir),
                                        "log_dir": str(data_dir / "log")})
    system = SystemStore(settings.system_db_path)
    market = MarketStore(settings.market_db_path, cal)
    feed = SyntheticFeed(market, clock, cal, seed=7)
    broker = SimulatedBroker(system, market, clock, starting_cash=100_000.0,
                             symbols=KNOWN_SYMBOLS, calendar=cal)
    engine = Engine(mode="demo", system=system, market=market, broker=broker, feed=feed,
                    clock=clock, calendar=cal, plugin_dirs=[plugin_dir] if plugin_dir else [],
                    before_tick=feed.ensure_until)
    scheduler = Scheduler(engine, clock, cal, 2.0)
    return Rig(engine, scheduler, clock, feed, settings, data_dir)


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "buy_once.py").write_text(BUY_ONCE)
    (d / "crashes.py").write_text(CRASHES)
    return d


@pytest.fixture
def rig(data_dir: Path, plugin_dir: Path) -> Iterator[Rig]:
    r = make_rig(data_dir, plugin_dir=plugin_dir)
    yield r
    r.engine.close()
    r.engine.system.close()
    r.engine.market.close()


@pytest.fixture
def pin_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def idle_time() -> FakeTime:
    return FakeTime(1000.0)


@pytest.fixture
def window(qtbot, rig: Rig, pin_time: FakeTime, idle_time: FakeTime):
    """The real window on the rig, engine started (worker thread), scheduler not running:
    tests drive ticks themselves."""
    from app.ui.window import MainWindow

    w = MainWindow(rig.settings, rig.engine.system, pin_now=pin_time, idle_now=idle_time,
                   run_scheduler=False)
    qtbot.addWidget(w)
    w.attach_engine(rig.engine, rig.scheduler)
    w.resize(800, 480)
    w.show()
    qtbot.waitUntil(lambda: w._engine_started, timeout=10_000)
    yield w
    w.shutdown()


def enter(lock_vm: Any, pin: str) -> None:
    """Type ``pin`` and OK, then wait for the (threaded) hash check to finish."""
    import time

    from PySide6.QtTest import QTest

    for d in pin:
        lock_vm.digit(d)
    lock_vm.submit()
    deadline = time.monotonic() + 10
    while lock_vm.busy and time.monotonic() < deadline:
        QTest.qWait(5)
    assert not lock_vm.busy, "the PIN check did not finish"


def set_up_pin(w: Any, pin: str = PIN) -> None:
    enter(w.lock_vm, pin)
    enter(w.lock_vm, pin)


def unlocked_window(qtbot, w: Any) -> Any:
    set_up_pin(w)
    qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=15000)
    return w


def wait_account(qtbot, w: Any) -> None:
    """Until the header shows the broker's account (its first read is on a worker thread)."""
    qtbot.waitUntil(lambda: w.header_vm.free() is not None, timeout=15000)
