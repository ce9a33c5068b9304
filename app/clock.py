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

from app.timeutil import require_aware, utcnow


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
    """Accelerated time: ``now = start + (real elapsed) * speed``."""

    def __init__(self, start: datetime, speed: float = 60.0) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self._lock = threading.Lock()
        self._origin = require_aware(start)
        self._real0 = time.monotonic()
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        with self._lock:
            elapsed = time.monotonic() - self._real0
            return self._origin + timedelta(seconds=elapsed * self._speed)

    def jump_to(self, t: datetime) -> None:
        """Move the clock forward to ``t`` at once (never backwards)."""
        t = require_aware(t)
        with self._lock:
            current = self._origin + timedelta(seconds=(time.monotonic() - self._real0) * self._speed)
            if t > current:
                self._origin = t
                self._real0 = time.monotonic()

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        with self._lock:
            now = self._origin + timedelta(seconds=(time.monotonic() - self._real0) * self._speed)
            self._origin, self._real0, self._speed = now, time.monotonic(), float(speed)

    def sleep_until(self, t: datetime, stop: threading.Event | None = None) -> bool:
        stop = stop or threading.Event()
        t = require_aware(t)
        while True:
            remaining = (t - self.now()).total_seconds() / self._speed
            if remaining <= 0:
                return not stop.is_set()
            if stop.wait(min(remaining, 1.0)):
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
