"""The minute scheduler: one tick ``offset_seconds`` after each minute boundary while open.

The tick for minute boundary ``m`` runs at ``m + offset`` when the market is open at ``m``
(``calendar.is_open(m)``), so the first tick of a session is at the open (on the previous
session's bars) and the last at ``close - 1 min``; early closes and DST come from the calendar's
UTC opens and closes. While closed the loop sleeps straight to the next open — a simulated
clock ``jump_to``s there instead of waiting. If the loop falls behind (a suspended laptop, a
tick slower than a simulated minute) it skips to the newest minute rather than replaying stale
ones.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from app.calendar import MarketCalendar
from app.clock import Clock
from app.timeutil import floor_minute, iso_z, require_aware

logger = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
# Ticks later than this after their wake time are stale: skip to the current minute.
STALE_AFTER = timedelta(seconds=50)


class Scheduler:
    def __init__(self, engine: Any, clock: Clock, calendar: MarketCalendar,
                 offset_seconds: float = 2.0) -> None:
        self.engine, self.clock, self.calendar = engine, clock, calendar
        self.offset = timedelta(seconds=offset_seconds)
        self.last_minute: datetime | None = getattr(engine, "last_minute", None)
        self.ticks = 0

    def next_wake(self, now: datetime) -> datetime:
        """``m + offset`` for the next boundary ``m`` inside a session that has not run yet.

        A wake time up to ``STALE_AFTER`` in the past is still returned (run it now)."""
        now = require_aware(now)
        m = floor_minute(now - self.offset)
        if now - (m + self.offset) > STALE_AFTER:
            m += MINUTE  # too late for this minute's tick: the next one
        if self.last_minute is not None and m <= self.last_minute:
            m = self.last_minute + MINUTE
        if not self.calendar.is_open(m):
            m = self.calendar.next_open(m)
        return m + self.offset

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set. A tick in progress always finishes."""
        logger.info("scheduler running (clock x%g, ticks at +%.0f s)", self.clock.speed,
                    self.offset.total_seconds())
        while not stop.is_set():
            now = self.clock.now()
            wake = self.next_wake(now)
            minute = wake - self.offset
            jump = getattr(self.clock, "jump_to", None)
            # Ticks come every minute while open, so a longer wait means closed hours.
            if jump is not None and wake - now > 2 * MINUTE:
                logger.info("market closed: simulated clock jumps to the open %s", iso_z(minute))
                jump(minute)
            elif wake - now > MINUTE * 5:
                logger.info("market closed; next tick at %s", iso_z(wake))
            if not self.clock.sleep_until(wake, stop):
                break
            late = self.clock.now() - wake
            if late > STALE_AFTER:
                logger.warning("tick for %s is %.0f s late; skipping to the current minute",
                               iso_z(minute), late.total_seconds())
                self.last_minute = minute
                continue
            try:
                result = self.engine.run_tick(minute)
            except Exception:
                logger.exception("tick %s failed", iso_z(minute))
            else:
                logger.debug("tick %s done in %.1f ms", iso_z(minute), result.latency_ms)
            self.last_minute = minute
            self.ticks += 1
        logger.info("scheduler stopped after %d ticks", self.ticks)
