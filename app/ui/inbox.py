"""Hand work from any thread to the GUI thread without touching Qt off it.

PySide6 6.8 can crash when a signal is emitted from a thread Qt did not create (PYSIDE-3124):
the engine's plain Python threads (the synthetic feed, websocket-client's reader, the PIN
hashing thread) must not emit. They ``post`` a call here instead: a lock-free deque append,
no Qt involved. A timer owned by the GUI thread runs the posted calls there, in order.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Slot

logger = logging.getLogger(__name__)


class GuiInbox(QObject):
    """A queue of calls that the GUI thread runs every ``interval_ms``."""

    def __init__(self, parent: QObject | None = None, *, interval_ms: int = 40,
                 max_pending: int = 50_000, batch: int = 5_000) -> None:
        super().__init__(parent)
        # Bounded: if the GUI thread stalls, the oldest calls go rather than memory growing.
        self._calls: collections.deque[tuple[Callable[..., Any], tuple]] = collections.deque(
            maxlen=max_pending)
        self._batch = batch
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.drain)
        self._timer.start()

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the GUI thread soon. Safe from any thread."""
        self._calls.append((fn, args))

    def pending(self) -> int:
        return len(self._calls)

    @Slot()
    def drain(self) -> None:
        """Run the posted calls (GUI thread); at most ``batch`` per turn of the event loop."""
        calls = self._calls
        for _ in range(min(len(calls), self._batch)):
            try:
                fn, args = calls.popleft()
            except IndexError:
                break
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - one bad receiver must not stop the others
                logger.exception("a call handed to the GUI thread failed")

    def stop(self) -> None:
        self._timer.stop()
        self._calls.clear()
