"""The minute scheduler against the real XNYS calendar: closed hours, early close, DST."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from app.clock import SimulatedClock
from app.engine.scheduler import Scheduler


def utc(*a):
    return datetime(*a, tzinfo=UTC)


class Idle:
    """An engine stand-in for next_wake only (next_wake never calls it)."""

    last_minute = None


@pytest.mark.parametrize("now, last, wake", [
    # in session: this minute's tick (up to 50 s late), or the next one after it ran
    (utc(2024, 6, 4, 14, 0, 0), None, utc(2024, 6, 4, 14, 0, 2)),
    (utc(2024, 6, 4, 14, 0, 30), None, utc(2024, 6, 4, 14, 0, 2)),
    (utc(2024, 6, 4, 14, 0, 30), utc(2024, 6, 4, 14, 0), utc(2024, 6, 4, 14, 1, 2)),
    # before the open, after the close, the weekend
    (utc(2024, 6, 4, 12, 0), None, utc(2024, 6, 4, 13, 30, 2)),
    (utc(2024, 6, 4, 20, 0, 5), utc(2024, 6, 4, 19, 59), utc(2024, 6, 5, 13, 30, 2)),
    (utc(2024, 6, 8, 12, 0), None, utc(2024, 6, 10, 13, 30, 2)),
    # early close: 2024-11-29 closes 13:00 New York (18:00 UTC); last tick 12:59
    (utc(2024, 11, 29, 17, 58, 50), utc(2024, 11, 29, 17, 58), utc(2024, 11, 29, 17, 59, 2)),
    (utc(2024, 11, 29, 17, 59, 30), utc(2024, 11, 29, 17, 59), utc(2024, 12, 2, 14, 30, 2)),
    # DST starts 2024-03-10: Friday opens 14:30 UTC, Monday 13:30 UTC
    (utc(2024, 3, 8, 21, 0), None, utc(2024, 3, 11, 13, 30, 2)),
    (utc(2024, 11, 1, 21, 0), None, utc(2024, 11, 4, 14, 30, 2)),
    # a holiday (2024-07-04) is skipped
    (utc(2024, 7, 3, 17, 30), utc(2024, 7, 3, 16, 59), utc(2024, 7, 5, 13, 30, 2)),
])
def test_next_wake(calendar, now, last, wake):
    s = Scheduler(Idle(), SimulatedClock(now, speed=1.0), calendar, offset_seconds=2.0)
    s.last_minute = last
    assert s.next_wake(now) == wake


@pytest.mark.parametrize("speed, wake", [
    (1.0, utc(2024, 6, 4, 14, 5, 2)),    # real time: 5 minutes behind is stale, skip
    (60.0, utc(2024, 6, 4, 14, 1, 2)),   # 60x: 5 simulated minutes = 5 s, catch up
])
def test_catching_up_or_skipping_depends_on_real_time_behind(calendar, speed, wake):
    now = utc(2024, 6, 4, 14, 5, 0)
    s = Scheduler(Idle(), SimulatedClock(now, speed=speed), calendar)
    s.last_minute = utc(2024, 6, 4, 14, 0)
    assert s.next_wake(now) == wake


def run_until(engine, scheduler, end):
    """Run the real loop until a tick at or after ``end``; return the ticked minutes."""
    stop = threading.Event()
    minutes = []

    class Stopper:
        def on_tick(self, result):
            minutes.append(result.minute)
            if result.minute >= end:
                stop.set()

    engine.add_listener(Stopper())
    worker = threading.Thread(target=scheduler.run, args=(stop,), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    return minutes


def test_an_early_close_day_then_the_next_session(make_engine, calendar, clock):
    clock.set(utc(2024, 11, 29, 14, 0))  # before the 9:30 New York open
    engine = make_engine()
    a = engine.create_algorithm("scripted", "AAA", 1000)
    minutes = run_until(engine, Scheduler(engine, clock, calendar), utc(2024, 12, 2, 14, 30))
    friday = [m for m in minutes if m.day == 29]
    assert len(friday) == 210  # 9:30 .. 12:59 New York
    assert friday[0] == utc(2024, 11, 29, 14, 30) and friday[-1] == utc(2024, 11, 29, 17, 59)
    assert minutes[-1] == utc(2024, 12, 2, 14, 30)  # nothing in between: closed
    assert len(minutes) == 211 and all(calendar.is_open(m) for m in minutes)
    assert engine.system.get_algorithm(a)["error"] is None


def test_a_dst_weekend(make_engine, calendar, clock):
    clock.set(utc(2024, 3, 8, 20, 58, 2))
    engine = make_engine()
    minutes = run_until(engine, Scheduler(engine, clock, calendar), utc(2024, 3, 11, 13, 31))
    assert minutes == [utc(2024, 3, 8, 20, 58), utc(2024, 3, 8, 20, 59),
                       utc(2024, 3, 11, 13, 30), utc(2024, 3, 11, 13, 31)]


def test_simulated_clock_jumps_over_the_weekend_instead_of_waiting(make_engine, calendar):
    # 15:58 New York on a Friday at 600x: two minutes take 0.2 s, the weekend no time at all.
    engine = make_engine()
    clock = SimulatedClock(utc(2024, 6, 7, 19, 58, 2, 500_000), speed=600)
    started = time.monotonic()
    minutes = run_until(engine, Scheduler(engine, clock, calendar), utc(2024, 6, 10, 13, 30))
    assert minutes == [utc(2024, 6, 7, 19, 58), utc(2024, 6, 7, 19, 59),
                       utc(2024, 6, 10, 13, 30)]
    assert time.monotonic() - started < 10


def test_stop_ends_the_loop_between_ticks(make_engine, calendar):
    clock = SimulatedClock(utc(2024, 6, 4, 14, 0), speed=1)  # real time: would wait a minute
    engine = make_engine()
    stop = threading.Event()
    worker = threading.Thread(target=Scheduler(engine, clock, calendar).run, args=(stop,))
    worker.start()
    stop.set()
    worker.join(timeout=5)
    assert not worker.is_alive()


def test_resumes_after_the_last_minute_run(make_engine, calendar, clock):
    clock.set(utc(2024, 6, 4, 14, 0, 2))
    engine = make_engine()
    engine.run_tick(utc(2024, 6, 4, 14, 0))
    s = Scheduler(engine, clock, calendar)  # a restart within the same minute
    assert s.next_wake(clock.now()) == utc(2024, 6, 4, 14, 1, 2)



def test_a_tick_failing_the_same_way_logs_its_traceback_once(make_engine, calendar, caplog):
    """A lasting fault (a bug in the tick) is a traceback once, then one line a minute, and a
    line when ticks run again."""
    import logging

    engine = make_engine()
    clock = SimulatedClock(utc(2024, 6, 4, 14, 0, 2, 500_000), speed=600)
    real, calls = engine.run_tick, []

    def flaky(minute):
        calls.append(minute)
        if len(calls) <= 4:
            raise RuntimeError("the same bug")
        return real(minute)

    engine.run_tick = flaky
    scheduler = Scheduler(engine, clock, calendar)
    scheduler.max_ticks = 6
    with caplog.at_level(logging.INFO, logger="app.engine.scheduler"):
        scheduler.run(threading.Event())
    assert len(calls) == 6
    # The app's SecretFilter (installed by any earlier test of this process that set up
    # logging) turns a record's exc_info into scrubbed exc_text: either form is a traceback.
    tracebacks = [r.exc_text or logging.Formatter().formatException(r.exc_info)
                  for r in caplog.records if r.exc_info or r.exc_text]
    assert len(tracebacks) == 1 and "RuntimeError: the same bug" in tracebacks[0]
    again = [r.getMessage() for r in caplog.records if "failed again" in r.getMessage()]
    assert len(again) == 3 and "(4 in a row, traceback above)" in again[-1]
    assert any("ran again after 4 failed ticks" in r.getMessage() for r in caplog.records)


def test_a_barrier_given_with_the_clock_holds_however_late_the_next_call_comes():
    """The demo's first barrier is set with the clock: at x6000 the two simulated seconds to
    the first tick pass in a third of a millisecond, so a hold_at() after construction was
    refused on a busy machine and the day ran off without its first ticks (seen in CI)."""
    start = utc(2024, 6, 4, 13, 30)
    first_tick = utc(2024, 6, 4, 13, 30, 2)
    late = SimulatedClock(start, speed=6000)
    time.sleep(0.01)  # a busy machine between construction and hold_at
    assert not late.hold_at(first_tick) and late.now() > first_tick  # the race, refused
    clock = SimulatedClock(start, speed=6000, hold_at=first_tick)
    time.sleep(0.01)
    assert clock.now() == first_tick and clock.held
    clock.release()
    time.sleep(0.01)
    assert clock.now() > first_tick
    with pytest.raises(ValueError, match="before the clock's start"):
        SimulatedClock(first_tick, speed=60, hold_at=start)
