"""One retry policy for calls to the broker: how often, how long apart, and when to stop.

Every retried broker call goes through ``call`` with a ``RetryPolicy``. Three rules keep the
number of tries bounded and stated:

1. **At most ``policy.attempts`` tries, none started later than ``policy.budget`` seconds
   after the first.** A pause that would end past the budget is not taken.
2. **Retries do not nest.** A ``call`` made inside another ``call`` (a lookup inside an
   order's send, a read inside a retried job) gets exactly one try: only the outermost loop
   retries. So one order placed through Alpaca costs at most ``ORDER_POLICY.attempts`` POSTs
   and two GET lookups per try (one before a resend, one after a 422), never attempts x
   attempts; alpaca-py's own retries are switched off (alpaca_clients.harden).
3. **The caller may stop a retry.** Inside ``with scope(check=...)`` the check runs before
   every retry (not before the first try); a reason from it ends the loop with ``Stopped``.
   The engine uses it so that an order whose algorithm was stopped (or whose minute went
   stale) while the broker answered 5xx is never sent again. ``scope(attempts=1)`` caps the
   tries of the calls inside it (the engine's "the broker is down: one try per order").

The scope and the nesting depth are context variables: a new thread starts outside both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # tries in all, the first included
    base: float = 0.5  # seconds before the second try; doubled for each further one
    cap: float = 8.0  # the longest pause between two tries
    budget: float = 20.0  # no try starts later than this many seconds after the first

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")

    def pause(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (0-based)."""
        return min(self.cap, self.base * 2.0 ** attempt)


# Reads (account, clock, positions, an order's state) are idempotent: retried freely.
READ_POLICY = RetryPolicy(attempts=5, base=0.5, cap=8.0, budget=30.0)
# An order: at most 3 POSTs, each resend preceded by a lookup by client order id.
ORDER_POLICY = RetryPolicy(attempts=3, base=0.5, cap=4.0, budget=20.0)


@dataclass(frozen=True)
class Scope:
    check: Callable[[], str | None] | None = None
    attempts: int | None = None


_scope: ContextVar[Scope | None] = ContextVar("broker_retry_scope", default=None)
_depth: ContextVar[int] = ContextVar("broker_retry_depth", default=0)


class Exhausted(Exception):
    """Every allowed try failed (or the budget ran out); ``last`` is the last failure."""

    def __init__(self, last: BaseException, tries: int) -> None:
        super().__init__(f"{tries} tries failed: {last}")
        self.last, self.tries = last, tries


class Stopped(Exhausted):
    """The scope's check (or the caller's stop signal) ended the loop before a retry."""

    def __init__(self, reason: str, last: BaseException, tries: int) -> None:
        super().__init__(last, tries)
        self.reason = reason


@contextmanager
def scope(check: Callable[[], str | None] | None = None,
          attempts: int | None = None) -> Iterator[None]:
    """Calls made inside retry only while ``check()`` is None, at most ``attempts`` tries."""
    token = _scope.set(Scope(check, attempts))
    try:
        yield
    finally:
        _scope.reset(token)


def allowed_attempts(policy: RetryPolicy) -> int:
    """Tries a ``call`` with ``policy`` would make here (1 when nested)."""
    if _depth.get() > 0:
        return 1
    sc = _scope.get()
    n = policy.attempts
    if sc is not None and sc.attempts is not None:
        n = min(n, max(1, sc.attempts))
    return n


def call(fn: Callable[[], T], policy: RetryPolicy, *,
         transient: Callable[[BaseException], bool],
         pause_for: Callable[[int, BaseException], float] | None = None,
         wait: Callable[[float], bool] | None = None,
         what: str = "broker call") -> T:
    """``fn()``, tried again after a ``transient`` failure within ``policy`` (module doc).

    A failure that is not transient is raised as it is. When the tries run out, ``Exhausted``
    (its ``last`` is the last failure); when the scope's check or ``wait`` (returns True to
    stop, e.g. ``threading.Event.wait``) ends it, ``Stopped``. ``pause_for(attempt, error)``
    may choose the pause (a 429's reset time); it is still bounded by the budget."""
    tries = allowed_attempts(policy)
    sc = _scope.get()
    start = time.monotonic()
    token = _depth.set(_depth.get() + 1)
    try:
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as e:
                if not transient(e):
                    raise
                last: BaseException = e
            attempt += 1
            if attempt >= tries:
                raise Exhausted(last, attempt) from last
            pause = policy.pause(attempt - 1) if pause_for is None else pause_for(attempt - 1,
                                                                                  last)
            if time.monotonic() - start + pause > policy.budget:
                logger.warning("%s: giving up after %d tries (%.0f s budget)", what, attempt,
                               policy.budget)
                raise Exhausted(last, attempt) from last
            logger.info("%s failed (%s); try %d of %d in %.2f s", what, last, attempt + 1,
                        tries, pause)
            if wait is not None:
                if wait(pause):
                    raise Stopped("shutting down", last, attempt) from last
            elif pause > 0:
                time.sleep(pause)
            why = sc.check() if sc is not None and sc.check is not None else None
            if why:
                logger.warning("%s: not tried again: %s", what, why)
                raise Stopped(why, last, attempt) from last
    finally:
        _depth.reset(token)
