"""The one retry policy at the broker boundary (app/broker/retry.py): bounded tries, a time
budget, no nesting, a check before every retry. Plain functions stand in for broker calls
here; the same rules through real alpaca-py and the emulator are in
test_send_failures_alpaca.py."""

from __future__ import annotations

import threading

import pytest

from app.broker import retry
from app.broker.retry import RetryPolicy

FAST = RetryPolicy(attempts=3, base=0.0, cap=0.0, budget=5.0)


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"reset {self.calls}")
        return "ok"


def transient(e: BaseException) -> bool:
    return isinstance(e, ConnectionError)


def test_transient_failures_are_retried_up_to_the_stated_attempts() -> None:
    f = Flaky(2)
    assert retry.call(f, FAST, transient=transient) == "ok" and f.calls == 3
    f = Flaky(3)
    with pytest.raises(retry.Exhausted) as ei:
        retry.call(f, FAST, transient=transient)
    assert f.calls == 3 and ei.value.tries == 3 and "reset 3" in str(ei.value.last)


def test_a_failure_that_is_not_transient_is_raised_at_once() -> None:
    calls = []

    def refuse() -> None:
        calls.append(1)
        raise ValueError("refused")

    with pytest.raises(ValueError):
        retry.call(refuse, FAST, transient=transient)
    assert calls == [1]


def test_retries_do_not_nest_so_tries_never_multiply() -> None:
    inner = Flaky(100)
    outer_calls = []

    def outer() -> str:
        outer_calls.append(1)
        return retry.call(inner, FAST, transient=transient)  # a lookup inside a send

    with pytest.raises(retry.Exhausted):
        retry.call(outer, FAST, transient=lambda e: isinstance(e, retry.Exhausted))
    assert len(outer_calls) == 3 and inner.calls == 3  # 3 x 1, not 3 x 3


def test_no_try_starts_after_the_budget() -> None:
    f = Flaky(100)
    slow = RetryPolicy(attempts=10, base=0.3, cap=0.3, budget=0.5)
    with pytest.raises(retry.Exhausted) as ei:
        retry.call(f, slow, transient=transient)
    assert f.calls == 2 and ei.value.tries == 2  # a third would start at 0.6 s > 0.5 s


def test_the_scope_check_stops_a_retry_and_caps_attempts() -> None:
    f = Flaky(100)
    halted = threading.Event()

    def check() -> str | None:
        return "the algorithm was stopped" if halted.is_set() else None

    def first_then_halt() -> str:
        halted.set()  # the user stops the algorithm while the first try is on the wire
        return f()

    with retry.scope(check=check), pytest.raises(retry.Stopped) as ei:
        retry.call(first_then_halt, FAST, transient=transient)
    assert f.calls == 1 and ei.value.reason == "the algorithm was stopped"

    f2 = Flaky(100)
    with retry.scope(attempts=1), pytest.raises(retry.Exhausted):
        retry.call(f2, FAST, transient=transient)
    assert f2.calls == 1
    f3 = Flaky(100)
    with pytest.raises(retry.Exhausted):  # outside the scope: the policy's own figure
        retry.call(f3, FAST, transient=transient)
    assert f3.calls == 3


def test_a_stop_signal_during_the_pause_ends_the_loop() -> None:
    f = Flaky(100)
    stop = threading.Event()
    stop.set()
    with pytest.raises(retry.Stopped):
        retry.call(f, RetryPolicy(attempts=5, base=10, cap=10, budget=60), transient=transient,
                   wait=stop.wait)
    assert f.calls == 1
