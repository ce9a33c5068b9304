"""The plugin sandbox's time limits, on real threads."""

from __future__ import annotations

import threading
import time

from app.engine.sandbox import Call, PluginPool


def test_overrun_is_abandoned_and_the_rest_go_on():
    pool = PluginPool(workers=2)
    release = threading.Event()
    calls = [Call("hang", lambda: release.wait(10)), Call("a", lambda: 1), Call("b", lambda: 2),
             Call("boom", lambda: 1 / 0)]
    started = time.monotonic()
    pool.run_all(calls, timeout=0.3)
    assert time.monotonic() - started < 5
    hang, a, b, boom = calls
    assert hang.timed_out and not hang.done.is_set()
    assert (a.result, b.result) == (1, 2)
    assert isinstance(boom.error, ZeroDivisionError) and boom.where.startswith("test_sandbox.py:")
    # The pool still has its full strength for the next run.
    again = pool.run_all([Call(i, lambda i=i: i * i) for i in range(4)], timeout=1)
    assert [c.result for c in again] == [0, 1, 4, 9]
    release.set()
    assert hang.done.wait(5)
    pool.close()


def test_calls_not_started_within_the_budget_are_skipped():
    pool = PluginPool(workers=1)
    calls = [Call(i, lambda: time.sleep(0.5) or "ran") for i in range(3)]
    pool.run_all(calls, timeout=2, budget=0.9)
    assert [c.result for c in calls[:2]] == ["ran", "ran"]
    assert calls[2].skipped and calls[2].started is None
    # The single worker reaches the skipped call before this one: it is never run later.
    assert pool.call(lambda: "next", timeout=2).result == "next"
    assert calls[2].started is None
    pool.close()
