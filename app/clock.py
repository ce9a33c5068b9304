"""Clocks: the scheduler asks a clock for "now" and to sleep, so tests and demos can bend time.

- ``WallClock``: real time.
- ``SimulatedClock``: starts at a chosen instant and runs ``speed`` times faster than real
  time; ``jump_to`` skips closed hours instantly (demo mode).
- ``ManualClock``: moves only when told; ``sleep_until`` jumps straight to the target
  (backtests and unit tests).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Protocol

from db.timeutil import require_aware, utcnow


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, aware UTC."""
        ...

    def sleep_until(self, t: datetime, stop: threading.Event | None = None) -> bool:
        """Block until the clock reads ``t``; return False if ``stop`` was set first."""
        ...

    @property
    def speed(self) -> float: ...


class WallClock:
    speed = 1.0

    def now(self) -> datetime:
        return utcnow()

    def sleep_until(self, t: datetime, stop: threading.Event | None = None) -> bool:
        stop = stop or threading.Event()
        t = require_aware(t)
        while True:
            remaining = (t - self.now()).total_seconds()
            if remaining <= 0:
                return not stop.is_set()
            # Wake at least every 30 s so a suspended laptop or a clock step is noticed.
            if stop.wait(min(remaining, 30.0)):
                return False


class SimulatedClock:
    """Accelerated time: ``now = start + (real elapsed) * speed``.

    A *barrier* (``hold_at``) is an instant the clock does not pass until it is released: the
    scheduler puts one at each tick's wake time and releases it when the tick is done, so
    the simulated market waits for a slow tick (the clock slows down) instead of running
    ahead of the orders being sent. ``stalled`` is the real time spent waiting at barriers.
    """

    def __init__(self, start: datetime, speed: float = 60.0,
                 hold_at: datetime | None = None) -> None:
        """``hold_at``: a first barrier, set with the clock (at x6000 two simulated seconds are
        a third of a millisecond: a ``hold_at()`` call after construction can come too late
        on a busy machine and be refused)."""
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self._lock = threading.Lock()
        self._origin = require_aware(start)
        self._real0 = time.monotonic()
        self._speed = float(speed)
        self._barrier: datetime | None = None if hold_at is None else require_aware(hold_at)
        if self._barrier is not None and self._barrier < self._origin:
            raise ValueError(f"hold_at {hold_at} is before the clock's start {start}")
        self._frozen_since: float | None = None
        self.stalled = 0.0  # real seconds the clock stood still at barriers

    @property
    def speed(self) -> float:
        return self._speed

    def _now_locked(self) -> datetime:
        mono = time.monotonic()
        t = self._origin + timedelta(seconds=(mono - self._real0) * self._speed)
        if self._barrier is not None and t >= self._barrier:
            # Standing at the barrier: restart the count from it when released.
            self._origin, self._real0 = self._barrier, mono
            if self._frozen_since is None:
                self._frozen_since = mono
            return self._barrier
        return t

    def now(self) -> datetime:
        with self._lock:
            return self._now_locked()

    def hold_at(self, t: datetime | None) -> bool:
        """Do not pass ``t`` until ``release()`` (None releases). Refused (False) when the
        clock is past ``t`` already: a barrier never moves time backwards."""
        if t is None:
            self.release()
            return True
        t = require_aware(t)
        with self._lock:
            if self._now_locked() > t:
                return False
            self._barrier = t
            return True

    def release(self) -> float:
        """Let the clock run again from where it stands; return the real seconds it stood."""
        with self._lock:
            self._now_locked()
            self._barrier = None
            stood = 0.0
            if self._frozen_since is not None:
                stood = time.monotonic() - self._frozen_since
                self._frozen_since = None
                self.stalled += stood
            return stood

    @property
    def held(self) -> bool:
        """True while the clock stands at a barrier."""
        with self._lock:
            self._now_locked()
            return self._frozen_since is not None

    def jump_to(self, t: datetime) -> None:
        """Move the clock forward to ``t`` at once (never backwards); a barrier before ``t``
        is dropped."""
        t = require_aware(t)
        with self._lock:
            current = self._now_locked()
            if t > current:
                if self._barrier is not None and self._barrier < t:
                    self._barrier = None
                    self._frozen_since = None
                self._origin = t
                self._real0 = time.monotonic()

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        with self._lock:
            now = self._now_locked()
            self._origin, self._real0, self._speed = now, time.monotonic(), float(speed)

    def sleep_until(self, t: datetime, stop: threading.Event | None = None) -> bool:
        stop = stop or threading.Event()
        t = require_aware(t)
        while True:
            remaining = (t - self.now()).total_seconds() / self._speed
            if remaining <= 0:
                return not stop.is_set()
            if stop.wait(min(max(remaining, 0.0005), 1.0)):
                return False


class ManualClock:
    """A clock that moves only when told to. ``sleep_until`` jumps straight to the target."""

    speed = float("inf")

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, t: datetime) -> None:
        with self._lock:
            self._now = require_aware(t)

    def advance(self, **kwargs: float) -> None:
        with self._lock:
            self._now = self._now + timedelta(**kwargs)

    def sleep_until(self, t: datetime, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():
            return False
        t = require_aware(t)
        with self._lock:
            if t > self._now:
                self._now = t
        return True
