"""tests/waiting.py: the wait helpers fail when they should (a helper that cannot fail would
make every test using it pass by accident)."""

from __future__ import annotations

import threading

import pytest

from tests.waiting import nothing_before, wait_until


def test_wait_until_returns_the_first_truthy_value_from_another_thread() -> None:
    box: list[int] = []
    threading.Timer(0.05, lambda: box.append(42)).start()
    assert wait_until(lambda: box and box[0], timeout=5) == 42


def test_wait_until_fails_naming_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match="the order to fill"):
        wait_until(lambda: False, timeout=0.05, what="the order to fill")


def test_nothing_before_passes_once_the_marker_comes_and_nothing_happened() -> None:
    done = threading.Event()
    threading.Timer(0.05, done.set).start()
    nothing_before(done.is_set, lambda: [], timeout=5)


def test_nothing_before_fails_on_what_happened_just_before_the_marker() -> None:
    """The unwanted thing and the marker come together (one thread, one step): still seen."""
    sent: list[str] = []
    done = threading.Event()

    def step() -> None:
        sent.append("order")
        done.set()

    threading.Timer(0.05, step).start()
    with pytest.raises(AssertionError, match="order"):
        nothing_before(done.is_set, lambda: sent, timeout=5, what="an order")


def test_nothing_before_fails_when_the_marker_never_comes() -> None:
    with pytest.raises(AssertionError, match="marker never came"):
        nothing_before(lambda: False, lambda: [], timeout=0.05)
