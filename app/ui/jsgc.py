"""Collect the QML engine's JavaScript garbage every minute, so the window's memory stays flat.

Every binding that builds a string ("Account " + value, the countdown, a card's texts) or a
Date leaves garbage on the QML engine's JavaScript heap, with the Qt strings and objects it
holds in the C heap. The engine collects it only when its allocation threshold is reached:
once a second of such work takes the better part of an hour to get there, so RSS rises in a
straight line for tens of minutes before the saw tooth turns, which looked like a leak
(issue 19; measured: a bare one-Text QML clock window grew +1.2 MB/h over 10 minutes, flat
with a collection every 10 s; with the clock 50 times faster the collector's own cycle shows
as a 0.4 MB saw tooth every ~50 s). A full collection of the app's small JS heap every minute
takes about a millisecond on the GUI thread and keeps the garbage to one minute's worth.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer
from PySide6.QtQml import QQmlEngine

DEFAULT_INTERVAL_S = 60.0


class JsCollector(QObject):
    """A GUI-thread timer calling ``engine.collectGarbage()`` every ``interval_s`` seconds."""

    def __init__(self, engine: QQmlEngine, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        super().__init__(engine)  # lives (and ends) with the engine, on its thread
        self._engine = engine
        self.runs = 0
        self.longest_ms = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(int(interval_s * 1000))
        self._timer.timeout.connect(self.collect)
        self._timer.start()

    def collect(self) -> None:
        t0 = time.perf_counter()
        self._engine.collectGarbage()
        self.runs += 1
        self.longest_ms = max(self.longest_ms, (time.perf_counter() - t0) * 1000)


def start_js_collector(engine: QQmlEngine,
                       interval_s: float = DEFAULT_INTERVAL_S) -> JsCollector:
    """The engine's one collector (a second call returns the first)."""
    found = engine.findChild(JsCollector)
    return found if isinstance(found, JsCollector) else JsCollector(engine, interval_s)
