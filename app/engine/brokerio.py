"""Broker I/O off the engine's lock: background jobs and calls with a deadline.

Nothing here holds the core's lock. ``ask`` runs a broker call on a helper thread and waits at
most ``timeout`` seconds: a broker that answers 5xx with retries or never answers costs the
caller (a UI request) a bounded wait and an ``EngineError``, and the helper thread finishes
on its own when the HTTP client gives up. ``submit`` queues a job (cancel, liquidation) and
returns at once. All threads are daemons: stopping the app never waits for the broker.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from app.broker.base import Account, BrokerError
from app.engine.model import EngineError

logger = logging.getLogger(__name__)

T = TypeVar("T")
ASK_TIMEOUT = 0.8  # seconds a UI request waits for the broker
ACCOUNT_MAX_AGE = 120.0  # a cached account older than this is not shown as current


def spawn(fn: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``fn(*args)`` on a new daemon thread; its future."""
    fut: Future[T] = Future()

    def run() -> None:
        try:
            fut.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            fut.set_exception(e)

    threading.Thread(target=run, name="engine-helper", daemon=True).start()
    return fut


class BrokerIO:
    def __init__(self, broker: Any, workers: int = 4) -> None:
        self.broker = broker
        self._queue: queue.SimpleQueue[
            tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._account: tuple[Account, float] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._workers = [threading.Thread(target=self._work, name=f"broker-job-{i}", daemon=True)
                         for i in range(workers)]
        for w in self._workers:
            w.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fut, fn, args = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - reported through the future
                logger.exception("broker job %s failed", getattr(fn, "__name__", fn))
                fut.set_exception(e)

    def ask(self, what: str, fn: Callable[[], T], timeout: float = ASK_TIMEOUT) -> T:
        """``fn()`` (a broker call) if it answers within ``timeout`` s, else EngineError."""
        if self._closed:
            raise EngineError("the engine is closed")
        fut = spawn(fn)
        try:
            return fut.result(timeout=timeout)
        except TimeoutError:
            raise EngineError(f"the broker did not answer within {timeout:g} s ({what}); "
                              "try again") from None
        except BrokerError as e:
            raise EngineError(f"cannot {what} with the broker: {e}") from e

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queue ``fn(*args)`` for a broker-job thread (jobs run in order of submission per
        thread, several at once across threads); returns its future."""
        fut: Future[Any] = Future()
        if self._closed:
            fut.cancel()
            return fut
        self._queue.put((fut, fn, args))
        return fut

    def account(self, timeout: float = ASK_TIMEOUT) -> Account:
        """The account now, or the last one read (at most ``ACCOUNT_MAX_AGE`` s old) if the
        broker is slow; EngineError when neither is available."""
        try:
            acct: Account = self.ask("read the account", self.broker.get_account, timeout)
        except EngineError:
            with self._lock:
                cached = self._account
            if cached is not None and time.monotonic() - cached[1] < ACCOUNT_MAX_AGE:
                return cached[0]
            raise
        self.remember(acct)
        return acct

    def remember(self, acct: Account) -> None:
        with self._lock:
            self._account = (acct, time.monotonic())

    def cached_account(self) -> Account | None:
        with self._lock:
            return None if self._account is None else self._account[0]

    def close(self) -> None:
        self._closed = True
        for _ in self._workers:
            self._queue.put(None)
