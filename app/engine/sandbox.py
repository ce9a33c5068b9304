"""Running untrusted plugin calls with a time limit.

A thread cannot be killed, so a call that overruns is *abandoned*: its result is dropped, its
worker thread leaves the pool when (if ever) the call returns, and a fresh worker takes its
place so the other plugins are not delayed. Workers are daemon threads so a hung plugin never
blocks interpreter shutdown.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class Call:
    key: Any
    fn: Callable[[], Any]
    result: Any = None
    error: BaseException | None = None
    where: str = ""
    timed_out: bool = False
    skipped: bool = False
    started: float | None = None
    finished: float | None = None
    done: threading.Event = field(default_factory=threading.Event)
    _report: queue.SimpleQueue | None = None

    @property
    def elapsed(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.monotonic()) - self.started


def _where(e: BaseException) -> str:
    """The innermost frame of a plugin exception, as ``file:line``."""
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return ""
    fr = tb[-1]
    return f"{fr.filename.rsplit('/', 1)[-1]}:{fr.lineno}"


class _Worker(threading.Thread):
    def __init__(self, pool: PluginPool, n: int) -> None:
        super().__init__(name=f"plugin-{n}", daemon=True)
        self.pool = pool
        self.abandoned = False

    def run(self) -> None:
        q = self.pool._tasks
        while True:
            call = q.get()
            if call is None:
                return
            with self.pool._lock:
                if call.skipped:
                    continue
                call.started = time.monotonic()
                self.pool._running[call] = self
            try:
                call.result = call.fn()
            except BaseException as e:  # noqa: BLE001 - a plugin may raise anything
                call.error = e
                call.where = _where(e)
            call.finished = time.monotonic()
            with self.pool._lock:
                self.pool._running.pop(call, None)
            call.done.set()
            if call._report is not None:
                call._report.put(call)
            if self.abandoned:
                logger.info("abandoned worker %s finished its late call and exits", self.name)
                return


class PluginPool:
    """A small pool of daemon threads; ``run_all`` waits for every call or its time limit."""

    def __init__(self, workers: int = 4) -> None:
        self.size = max(1, workers)
        self._tasks: queue.SimpleQueue[Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: dict[Call, _Worker] = {}
        self._workers: list[_Worker] = []
        self._n = 0
        self._closed = False

    def _spawn(self) -> None:
        self._n += 1
        w = _Worker(self, self._n)
        self._workers.append(w)
        w.start()

    def _ensure_workers(self) -> None:
        self._workers = [w for w in self._workers if w.is_alive() and not w.abandoned]
        while len(self._workers) < self.size:
            self._spawn()

    def run_all(self, calls: list[Call], timeout: float,
                budget: float | None = None) -> list[Call]:
        """Run ``calls``; each may take ``timeout`` seconds from its own start. Returns them
        with ``result``/``error`` set, ``timed_out`` for the ones abandoned, or ``skipped``
        for those not started within ``budget`` seconds (slow plugins ate the time)."""
        if self._closed:
            raise RuntimeError("plugin pool is closed")
        if not calls:
            return calls
        report: queue.SimpleQueue[Call] = queue.SimpleQueue()
        with self._lock:
            self._ensure_workers()
        for c in calls:
            c._report = report
            self._tasks.put(c)
        pending = set(calls)
        give_up = None if budget is None else time.monotonic() + budget
        while pending:
            now = time.monotonic()
            if give_up is not None and now >= give_up:
                with self._lock:
                    for c in list(pending):
                        if c.started is None:
                            c.skipped = True
                            pending.discard(c)
                give_up = None
                if not pending:
                    break
            with self._lock:
                started = [(c, w) for c, w in self._running.items() if c in pending]
            overdue = [(c, w) for c, w in started if now - (c.started or now) > timeout]
            for c, w in overdue:
                if c.done.is_set():
                    continue
                c.timed_out = True
                w.abandoned = True
                pending.discard(c)
                logger.warning("plugin call %s overran %.1f s; abandoning its thread", c.key,
                               timeout)
                with self._lock:
                    self._ensure_workers()
            deadlines = [(c.started or now) + timeout for c, _ in started if c in pending]
            wait = max(0.0, min(deadlines) - now) + 0.001 if deadlines else 0.05
            if give_up is not None:
                wait = min(wait, max(0.0, give_up - now) + 0.001)
            try:
                c = report.get(timeout=wait)
            except queue.Empty:
                continue
            pending.discard(c)
            while True:  # drain what else finished meanwhile
                try:
                    pending.discard(report.get_nowait())
                except queue.Empty:
                    break
        return calls

    def call(self, fn: Callable[[], Any], timeout: float, key: Any = None) -> Call:
        return self.run_all([Call(key, fn)], timeout)[0]

    def close(self) -> None:
        """Let idle workers exit; hung ones are daemons and are left behind."""
        self._closed = True
        with self._lock:
            live = [w for w in self._workers if w.is_alive() and not w.abandoned]
        for _ in live:
            self._tasks.put(None)
