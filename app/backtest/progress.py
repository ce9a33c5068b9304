"""A backtest's progress, drawn by app/term.Progress (the one progress display of every
command): the replay calls ``bar(done, total)`` with minutes done; on a terminal that is a rich
bar with bars/s and the time left. Off a terminal nothing is drawn: the run's table says the
rest, and lines on a pipe would count against the plugin's own output budget (app/backtest/pool).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from app.term import Progress


def _left(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 60}:{s % 60:02d}"


class ProgressBar:
    """``bar(done, total)``; ``close()`` ends the display (also when the run failed)."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        # In a backtest child, sys.stderr caps what the plugin prints; the bar is not plugin
        # output, so it writes to the stream beneath (pool._CappedStream.real).
        self.stream = getattr(self.stream, "real", self.stream)
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self._t0 = time.perf_counter()
        self._bar: Progress | None = None

    def describe(self, done: int, total: int, fields: dict[str, Any]) -> str:
        spent = time.perf_counter() - self._t0
        rate = done / spent if spent > 0 else 0.0
        text = f"{self.label}  {done:,}/{total:,} bars  {rate:,.0f}/s"
        if 0 < done < total and rate > 0:
            text += f"  {_left((total - done) / rate)} left"
        return text

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = Progress(self.describe, self.stream)
            self._bar.__enter__()
        self._bar.update(done, total)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.__exit__(None, None, None)
