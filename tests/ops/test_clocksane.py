"""The engine does not tick on a wall clock that has not been set (a Pi 4 without network time
boots in 1970 or at the last shutdown)."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app import clocksane
from app.clock import ManualClock, WallClock

ROOT = Path(__file__).resolve().parents[2]
EPOCH = datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC)


class UnsetWallClock(WallClock):
    """The wall clock of a Pi before network time: 1970 for ``unset_reads`` readings."""

    def __init__(self, unset_reads: int) -> None:
        self.left = unset_reads
        self.sleeps: list[datetime] = []

    def now(self) -> datetime:
        if self.left > 0:
            self.left -= 1
            return EPOCH
        return datetime.now(UTC)

    def sleep_until(self, t: datetime, stop: threading.Event | None = None) -> bool:
        self.sleeps.append(t)
        return False  # end the scheduler's loop here


def test_release_date_is_not_in_the_future() -> None:
    assert datetime.now(UTC) >= clocksane.RELEASE_DATE
    assert clocksane.RELEASE_DATE.tzinfo is not None


def test_clock_problem() -> None:
    msg = clocksane.clock_problem(EPOCH)
    assert msg is not None and "1970-01-01" in msg and "before this release" in msg
    assert clocksane.clock_problem(clocksane.RELEASE_DATE - timedelta(seconds=1)) is not None
    assert clocksane.clock_problem(clocksane.RELEASE_DATE) is None
    assert clocksane.clock_problem(datetime.now(UTC)) is None


def test_simulated_and_manual_clocks_are_not_checked() -> None:
    stop = threading.Event()
    stop.set()  # would make any wait return False at once
    assert clocksane.wait_for_sane_clock(ManualClock(EPOCH), stop) is True


def test_waits_saying_so_once_until_the_clock_is_set(caplog: pytest.LogCaptureFixture) -> None:
    clock = UnsetWallClock(unset_reads=5)
    with caplog.at_level(logging.WARNING, logger="app.clocksane"):
        assert clocksane.wait_for_sane_clock(clock, threading.Event(), poll=0.001) is True
    assert clock.left == 0
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2, msgs  # once when it starts waiting, once when it is over
    assert msgs[0].startswith("not trading: the clock reads 1970-01-01")
    assert "trading resumes" in msgs[1]


def test_stop_ends_the_wait() -> None:
    clock = UnsetWallClock(unset_reads=10**9)
    stop = threading.Event()
    t = threading.Thread(target=lambda: stop.wait(0.05) or stop.set())
    t.start()
    assert clocksane.wait_for_sane_clock(clock, stop, poll=0.01) is False
    t.join()


def test_the_scheduler_does_not_tick_before_the_clock_is_set(
        calendar, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.engine.scheduler import Scheduler

    class Engine:
        last_minute = None
        ticks: list[datetime] = []

        def run_tick(self, minute: datetime) -> None:
            self.ticks.append(minute)

    clock = UnsetWallClock(unset_reads=3)
    sched = Scheduler(Engine(), clock, calendar)
    monkeypatch.setattr(clocksane, "POLL_SECONDS", 0.001)
    stop = threading.Event()
    runner = threading.Thread(target=sched.run, args=(stop,))
    runner.start()
    runner.join(timeout=30)
    stop.set()
    assert not runner.is_alive()
    # No tick ran on the 1970 clock; once set, the next wake is a real future session minute
    # (a 1970 clock would have stopped the scheduler: the calendar has no 1970 sessions).
    assert Engine.ticks == []
    assert len(clock.sleeps) == 1 and clock.sleeps[0] > datetime.now(UTC) - timedelta(minutes=2)


def test_clocksane_imports_no_qt() -> None:
    code = ("import sys, app.clocksane, app.engine.scheduler\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'shiboken6', 'pyqtgraph')))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_kernel_clock_state_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    state = clocksane.kernel_clock_synchronized()
    if sys.platform.startswith("linux"):
        assert state in (True, False)  # asked the kernel, got an answer
    else:
        assert state is None


def test_doctor_reports_an_unsynchronised_or_unset_clock(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from app.config import Settings
    from app.ops import doctor

    def findings(**kw):
        d = doctor.Doctor(Settings(data_dir=str(tmp_path)), offline=True)
        d.check_wall_clock(**kw)
        return [(f.level, f.message) for f in d.findings]

    assert findings(synced=lambda: True) == []
    assert findings(synced=lambda: None) == []
    [(level, msg)] = findings(synced=lambda: False)
    assert level == "warn" and "not kept in sync" in msg
    monkeypatch.setattr(clocksane, "RELEASE_DATE", datetime.now(UTC) + timedelta(days=3))
    monkeypatch.setattr(clocksane.clock_problem, "__defaults__", (clocksane.RELEASE_DATE,))
    [(level, msg)] = findings(synced=lambda: True)
    assert level == "FAIL" and "before this release" in msg and "does not trade" in msg
