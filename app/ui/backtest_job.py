"""'Backtest last 5 days' in a process of its own, cancellable, never on the engine's threads.

A plugin that loops forever in a backtest costs only that process: Cancel (or closing the
window) kills it without waiting. The GUI thread starts the process and polls its pipe with a
QTimer, so no thread of ours emits a Qt signal (PySide6 6.8 crashes when a plain Python thread
does). The child reads the market DB itself (the ticker step already loaded the history).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

logger = logging.getLogger(__name__)

POLL_MS = 100


def _child(conn: Any, settings: Any, plugin: str, ticker: str, days: int, capital: float,
           params: dict | None) -> None:
    """Runs in the backtest process: one answer on ``conn``, ("done", report) or
    ("failed", message fit to show)."""
    try:
        from app.backtest.api import backtest_recent
        from app.backtest.errors import BacktestError

        try:
            _, report = backtest_recent(settings, plugin, ticker, days=days, capital=capital,
                                        params=params or None)
        except BacktestError as e:
            conn.send(("failed", str(e)))
            return
        conn.send(("done", report))
    except Exception:  # noqa: BLE001 - the parent shows a sentence; the trace goes to stderr
        import traceback

        traceback.print_exc()
        conn.send(("failed", "the backtest stopped on an unexpected error (details in the "
                             "app's output)"))
    finally:
        conn.close()


class BacktestJob(QObject):
    """At most one backtest process at a time; a new start or ``cancel`` ends the old one."""

    done = Signal(int, dict)     # request number, report dict
    failed = Signal(int, str)    # request number, message
    cancelled = Signal(int)

    def __init__(self, settings: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Any = None
        self._seq = -1
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)

    @property
    def running(self) -> bool:
        return self._proc is not None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, seq: int, plugin: str, ticker: str, days: int, capital: float,
              params: dict) -> None:
        self._kill()
        if self._settings is None:
            self.failed.emit(seq, "backtests are not available here")
            return
        parent_end, child_end = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_child, name=f"backtest-{ticker}", daemon=True,
                                 args=(child_end, self._settings, plugin, ticker, days,
                                       float(capital), dict(params or {})))
        try:
            proc.start()
        except Exception as e:  # noqa: BLE001 - e.g. out of processes
            logger.exception("cannot start the backtest process")
            parent_end.close()
            child_end.close()
            self.failed.emit(seq, f"cannot start a backtest now ({type(e).__name__})")
            return
        child_end.close()  # the child holds its own copy
        self._proc, self._conn, self._seq = proc, parent_end, seq
        logger.info("backtest of %s on %s started (process %s)", plugin, ticker, proc.pid)
        self._timer.start()

    def cancel(self) -> None:
        """Kill the running backtest, if any (no wait)."""
        seq = self._seq
        if self._kill():
            logger.info("backtest %s cancelled", seq)
            self.cancelled.emit(seq)

    def shutdown(self) -> None:
        self._kill()

    def _kill(self) -> bool:
        self._timer.stop()
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is None:
            return False
        try:
            if proc.is_alive():
                proc.kill()
            # Reap it when it is already gone; never block for it.
            proc.join(0)
        except Exception:  # noqa: BLE001
            logger.exception("ending the backtest process failed")
        if conn is not None:
            conn.close()
        return True

    def _poll(self) -> None:
        proc, conn, seq = self._proc, self._conn, self._seq
        if proc is None or conn is None:
            self._timer.stop()
            return
        answer = None
        try:
            if conn.poll():
                answer = conn.recv()
        except (EOFError, OSError):
            answer = ("failed", "the backtest process ended without an answer")
        if answer is None:
            if not proc.is_alive():
                answer = ("failed", "the backtest process ended without an answer "
                                    f"(exit code {proc.exitcode})")
            else:
                return
        self._kill()
        kind, value = answer
        if kind == "done":
            self.done.emit(seq, dict(value))
        else:
            self.failed.emit(seq, str(value))
