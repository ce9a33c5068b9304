"""Waiting in tests without fixed sleeps (issue 16: tests that cannot pass by accident).

- ``wait_until(cond, timeout)``: poll until ``cond()`` is truthy and return that value; on
  timeout fail with what was awaited (an ``assert wait_until(...)`` reads as before).
- ``nothing_before(marker, happened, timeout)``: a negative assertion ("no order was sent",
  "the stopped thread did not run again") made safe: it waits for a positive ``marker``
  event that proves the moment in question has passed (the next tick completed, the thread
  ended) and fails if ``happened()`` was ever truthy before or at it. A fixed sleep instead
  passes on a slow machine because nothing had had the time to happen yet; here a marker
  that never comes fails the test.

UI tests use pytest-qt's ``qtbot.waitUntil`` / ``waitSignal``, which run the Qt event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 0.005


# A positive wait's deadline costs nothing when the thing comes (the wait ends at once), and
# CI runs the suite on two workers on a loaded 2-core machine: 5 s timed out there.
DEFAULT_TIMEOUT = 15.0


def wait_until(cond: Callable[[], T], timeout: float = DEFAULT_TIMEOUT, what: str = "",
               interval: float = INTERVAL) -> T:
    """``cond()``'s first truthy value, polled every ``interval`` s; AssertionError after
    ``timeout`` s (naming ``what``, or the condition's source line)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or _describe(cond)}")
        time.sleep(interval)


def nothing_before(marker: Callable[[], object], happened: Callable[[], object],
                   timeout: float = DEFAULT_TIMEOUT, what: str = "",
                   interval: float = INTERVAL) -> None:
    """Wait for ``marker()`` (the event after which the unwanted thing can no longer come
    unseen); fail if ``happened()`` is truthy at any poll up to and including that moment,
    or if the marker does not come within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        seen = happened()
        if seen:
            raise AssertionError(f"{what or _describe(happened)} happened: {seen!r}")
        if marker():
            seen = happened()  # what came between the last look and the marker
            if seen:
                raise AssertionError(f"{what or _describe(happened)} happened: {seen!r}")
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"the marker never came within {timeout:g} s "
                                 f"({_describe(marker)}), so 'nothing happened' proves nothing")
        time.sleep(interval)


def _describe(fn: Callable[..., object]) -> str:
    import inspect

    try:
        return inspect.getsource(fn).strip()
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(fn))
