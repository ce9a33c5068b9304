"""The minute scheduler: one tick ``offset_seconds`` after each minute boundary while open.

The tick for minute boundary ``m`` runs at ``m + offset`` when the market is open at ``m``
(``calendar.is_open(m)``), so the first tick of a session is at the open (on the previous
session's bars) and the last at ``close - 1 min``; early closes and DST come from the calendar's
UTC opens and closes. While closed the loop sleeps straight to the next open — a simulated
clock ``jump_to``s there instead of waiting. If the loop falls more than 50 s of real time
behind (a suspended laptop, ticks slower than an accelerated minute) it skips to the newest
minute rather than replaying stale ones; less than that, it catches up minute by minute.

A simulated clock is held at each tick's wake time until the tick is done (``hold_at``): the
demo's time slows down for a slow tick instead of running ahead of the orders being sent, so
an order leaves at its minute's market time, never minutes later.
"""

from __future__ import annotations

import logging
import math
import threading
from datetime import datetime, timedelta
from typing import Any

from app.clock import Clock
from app.clocksane import wait_for_sane_clock
from db.calendar import MarketCalendar
from db.timeutil import floor_minute, iso_z, require_aware

logger = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
# A tick more than this much *real* time behind is stale: skip to the current minute. A
# simulated clock catches up on minutes it ran past (a slow start-up at 60x) instead.
STALE_REAL_SECONDS = 50.0
MAX_CATCH_UP = timedelta(days=1)


class Scheduler:
    def __init__(self, engine: Any, clock: Clock, calendar: MarketCalendar,
                 offset_seconds: float = 2.0) -> None:
        self.engine, self.clock, self.calendar = engine, clock, calendar
        self.offset = timedelta(seconds=offset_seconds)
        self.last_minute: datetime | None = getattr(engine, "last_minute", None)
        self.ticks = 0
        self.max_ticks: int | None = None  # stop after this many ticks (``--minutes N``)
        self._slow_logged = False
        self._failing: tuple[str, int] | None = None  # (the error, ticks in a row) failing

    def _window(self) -> timedelta:
        """How far behind (in clock time) a tick may still run."""
        speed = self.clock.speed
        if not math.isfinite(speed):
            return MAX_CATCH_UP
        return min(MAX_CATCH_UP, timedelta(seconds=STALE_REAL_SECONDS * speed))

    def next_wake(self, now: datetime) -> datetime:
        """``m + offset`` for the next boundary ``m`` inside a session that has not run yet.

        The earliest minute not run yet, unless it is more than the stale window behind
        ``now``; a wake time in the past means "run it now"."""
        now = require_aware(now)
        m = floor_minute(now - self.offset)
        if self.last_minute is not None:
            m = self.last_minute + MINUTE
        oldest = now - self.offset - self._window()
        if m < oldest:
            m = floor_minute(oldest) + MINUTE
        if not self.calendar.is_open(m):
            m = self.calendar.next_open(m)
        return m + self.offset

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set. A tick in progress always finishes."""
        logger.info("scheduler running (clock x%g, ticks at +%.0f s)", self.clock.speed,
                    self.offset.total_seconds())
        while not stop.is_set():
            if not wait_for_sane_clock(self.clock, stop):  # a Pi's clock before network time
                break
            now = self.clock.now()
            try:
                wake = self.next_wake(now)
            except ValueError as e:  # past the end of the calendar's known sessions
                logger.error("no next session to run: %s; the scheduler stops", e)
                break
            minute = wake - self.offset
            jump = getattr(self.clock, "jump_to", None)
            # Ticks come every minute while open, so a longer wait means closed hours.
            if jump is not None and wake - now > 2 * MINUTE:
                logger.info("market closed: simulated clock jumps to the open %s", iso_z(minute))
                jump(minute)
            elif wake - now > MINUTE * 5:
                logger.info("market closed; next tick at %s", iso_z(wake))
            hold = getattr(self.clock, "hold_at", None)
            held = bool(hold is not None and hold(wake))
            try:
                if not self.clock.sleep_until(wake, stop):
                    break
                late = self.clock.now() - wake
                if late > self._window():
                    logger.warning("tick for %s is %.0f s late; skipping to the current minute",
                                   iso_z(minute), late.total_seconds())
                    self.last_minute = minute
                    continue
                try:
                    result = self.engine.run_tick(minute)
                except Exception as e:
                    self._tick_failed(minute, e)
                else:
                    if self._failing is not None:
                        logger.warning("tick %s ran again after %d failed ticks",
                                       iso_z(minute), self._failing[1])
                        self._failing = None
                    logger.debug("tick %s done in %.1f ms", iso_z(minute), result.latency_ms)
            finally:
                if held:
                    self._note_stall(self.clock.release())  # type: ignore[attr-defined]  # held: a SimulatedClock
            self.last_minute = minute
            self.ticks += 1
            if self.max_ticks is not None and self.ticks >= self.max_ticks:
                logger.info("%d ticks run, as asked; the scheduler stops", self.ticks)
                break
        logger.info("scheduler stopped after %d ticks", self.ticks)

    def _tick_failed(self, minute: datetime, e: Exception) -> None:
        """A tick that raised: its traceback once, then one line a tick while the same error
        repeats (a lasting fault must not write a traceback every minute for months)."""
        what = f"{type(e).__name__}: {e}"
        if self._failing is None or self._failing[0] != what:
            self._failing = (what, 1)
            logger.exception("tick %s failed", iso_z(minute))
            return
        self._failing = (what, self._failing[1] + 1)
        logger.error("tick %s failed again (%d in a row, traceback above): %s", iso_z(minute),
                     self._failing[1], what)

    def _note_stall(self, stood: float) -> None:
        """A tick that took longer than a simulated minute lasts slows the demo's clock."""
        speed = self.clock.speed
        minute_real = 60.0 / speed if math.isfinite(speed) and speed > 0 else 0.0
        if minute_real and stood > minute_real and not self._slow_logged:
            self._slow_logged = True
            logger.warning("ticks take longer (%.2f s) than a simulated minute at x%g (%.2f s): "
                           "the demo's clock slows down to keep orders at their minute",
                           stood, speed, minute_real)
