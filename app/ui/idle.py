"""Idle lock: any touch, click or key press restarts the count; after the limit, lock.

Time comes from an injected function (monotonic seconds) and a 1 s poll timer, so tests move
time instead of sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer, Signal

logger = logging.getLogger(__name__)

ACTIVITY_EVENTS = frozenset({
    QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.KeyPress,
    QEvent.Type.TouchBegin, QEvent.Type.TouchUpdate, QEvent.Type.Wheel,
})


class IdleWatcher(QObject):
    """Emits ``idle`` once when nothing happened for ``seconds`` (0 = never)."""

    idle = Signal()

    def __init__(self, seconds: int, now: Callable[[], float] = time.monotonic,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._seconds = int(seconds)
        self._now = now
        self._last = now()
        self._armed = False
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self.poll)
        self._timer.start()

    def set_seconds(self, seconds: int) -> None:
        self._seconds = int(seconds)
        self.touch()

    def arm(self, armed: bool) -> None:
        """Watch only while unlocked."""
        self._armed = armed
        self.touch()

    def touch(self) -> None:
        self._last = self._now()

    def poll(self) -> None:
        if self._armed and self._seconds > 0 and self._now() - self._last >= self._seconds:
            self._armed = False
            logger.info("idle for %d s: locking", self._seconds)
            self.idle.emit()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() in ACTIVITY_EVENTS:
            self._last = self._now()
        return False
