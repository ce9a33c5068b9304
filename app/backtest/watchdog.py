"""A time limit for plugin calls that costs almost nothing per call.

Live trading runs each plugin call on a worker thread and abandons it after the limit; at a
few hundred thousand calls a second a thread hand-off per call is far too slow. Here the call
runs inline and a watchdog thread looks at the start time of the call in progress a few times
a second. When one has run past the limit it sends SIGUSR1 to the main thread; the handler
raises ``PluginTimeout`` inside the plugin's code (a real signal also wakes a blocking
``sleep`` or ``recv``). The handler only raises while a call is in progress, so a signal that
arrives just after the call returned is ignored.

Needs the main thread and POSIX signals (the CLI and sweep workers); elsewhere a call that
overruns is refused after it returns, as live trading would refuse it, but not interrupted.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

logger = logging.getLogger(__name__)


class PluginTimeout(Exception):
    pass


class Watchdog:
    def __init__(self, limit_s: float) -> None:
        self.limit = float(limit_s)
        self.started = 0.0          # perf_counter() of the call in progress, 0 = none
        self._stop = threading.Event()
        self._armed = (limit_s > 0 and hasattr(signal, "pthread_kill")
                       and threading.current_thread() is threading.main_thread())
        self._thread: threading.Thread | None = None
        self._previous: object = None

    def __enter__(self) -> Watchdog:
        if self._armed:
            self._previous = signal.signal(signal.SIGUSR1, self._on_signal)
            self._thread = threading.Thread(target=self._watch, name="backtest-watchdog",
                                            args=(threading.main_thread().ident,), daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            if self._previous is not None:  # None: the old handler was not set from Python
                signal.signal(signal.SIGUSR1, self._previous)  # type: ignore[arg-type]

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        if self.started:
            raise PluginTimeout(f"run() took longer than {self.limit:g} s (interrupted)")

    def _watch(self, main_ident: int) -> None:
        period = min(0.25, max(0.02, self.limit / 4))
        fired_for, fired_at = 0.0, 0.0
        while not self._stop.wait(period):
            s = self.started
            now = time.perf_counter()
            # Signal again every limit while the same call goes on: a plugin that catches
            # every exception inside a loop still gets interrupted where it does not.
            if s and now - s > self.limit and (s != fired_for or now - fired_at > self.limit):
                logger.warning("plugin call overran %.1f s; interrupting it", self.limit)
                fired_for, fired_at = s, now
                signal.pthread_kill(main_ident, signal.SIGUSR1)
