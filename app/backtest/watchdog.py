"""A time limit for plugin calls that costs almost nothing per call.

Live trading runs each plugin call on a worker thread and abandons it after the limit; at a
few hundred thousand calls a second a thread hand-off per call is far too slow. Here the call
runs inline and a watchdog thread looks at the start time of the call in progress twice a
second; when one has run past the limit it interrupts the main thread (``interrupt_main``),
which surfaces as ``PluginTimeout`` inside the plugin call. Only possible when the backtest
runs on the main thread (CLI, sweep workers); elsewhere overruns are refused after the fact.
"""

from __future__ import annotations

import _thread
import logging
import threading
import time

logger = logging.getLogger(__name__)


class PluginTimeout(Exception):
    pass


class Watchdog:
    def __init__(self, limit_s: float) -> None:
        self.limit = float(limit_s)
        self.started = 0.0          # perf_counter() of the call in progress, 0 = none
        self.fired = False
        self._stop = threading.Event()
        self._armed = threading.current_thread() is threading.main_thread() and limit_s > 0
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Watchdog:
        if self._armed:
            self._thread = threading.Thread(target=self._watch, name="backtest-watchdog",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _watch(self) -> None:
        period = min(0.5, max(0.05, self.limit / 4))
        while not self._stop.wait(period):
            s = self.started
            # Re-reading ``started`` narrows the window in which a call that just ended
            # could be blamed for overrunning.
            if (s and time.perf_counter() - s > self.limit and not self.fired
                    and self.started == s):
                logger.warning("plugin call overran %.1f s; interrupting it", self.limit)
                self.fired = True
                _thread.interrupt_main()

    def take_interrupt(self) -> bool:
        """After a KeyboardInterrupt: True if the watchdog caused it (then it is consumed)."""
        if self.fired:
            self.fired = False
            return True
        return False
