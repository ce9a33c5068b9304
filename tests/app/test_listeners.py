"""app/listeners.py: the one listener list (engine, brokers and feeds keep theirs with it)."""

from __future__ import annotations

import logging
import threading

from app.listeners import Callbacks, Listeners


def test_callbacks_all_hear_in_order_and_a_raising_one_is_logged_not_raised(caplog) -> None:
    heard: list[tuple[str, int]] = []

    def boom(x: int) -> None:
        raise RuntimeError("listener bug")

    cbs: Callbacks[[int]] = Callbacks("bar listener")
    cbs.add(lambda x: heard.append(("a", x)))
    cbs.add(boom)
    cbs.add(lambda x: heard.append(("c", x)))
    with caplog.at_level(logging.ERROR, logger="app.listeners"):
        cbs.notify(7)
    assert heard == [("a", 7), ("c", 7)]
    [rec] = caplog.records
    assert "bar listener" in rec.getMessage() and "boom" in rec.getMessage()
    assert rec.exc_info is not None and "listener bug" in str(rec.exc_info[1])


def test_objects_are_called_through_each_with_the_event_named_in_the_log(caplog) -> None:
    class Quiet:
        pass

    class Loud:
        def __init__(self) -> None:
            self.got: list[str] = []

        def on_tick(self, when: str) -> None:
            self.got.append(when)
            if when == "bad":
                raise ValueError("no")

    loud = Loud()
    objs: Listeners[object] = Listeners("engine listener")
    objs.add(Quiet())
    objs.add(loud)

    def call(lst: object) -> None:
        fn = getattr(lst, "on_tick", None)
        if fn is not None:
            fn("bad")

    with caplog.at_level(logging.ERROR, logger="app.listeners"):
        objs.each(call, "on_tick")
    assert loud.got == ["bad"]
    assert "engine listener Loud.on_tick failed" in caplog.records[0].getMessage()


def test_discard_and_clear() -> None:
    got: list[int] = []
    cbs: Callbacks[[int]] = Callbacks("x")

    def a(v: int) -> None:
        got.append(v)

    def b(v: int) -> None:
        got.append(-v)

    cbs.add(a)
    cbs.add(b)
    cbs.discard(a)
    cbs.notify(1)
    cbs.clear()
    cbs.notify(2)
    assert got == [-1] and len(cbs) == 0


def test_adding_while_another_thread_notifies_loses_nothing() -> None:
    """Adds from 8 threads race with a notifying thread: every add is kept, and a listener
    added during a call does not disturb that call (no 'changed size during iteration')."""
    cbs: Callbacks[[]] = Callbacks("x")
    stop = threading.Event()
    errors: list[BaseException] = []

    def notifier() -> None:
        try:
            while not stop.is_set():
                cbs.notify()
        except BaseException as e:  # pragma: no cover - the failure this test looks for
            errors.append(e)

    t = threading.Thread(target=notifier)
    t.start()

    def adder() -> None:
        for _ in range(200):
            cbs.add(lambda: None)

    adders = [threading.Thread(target=adder) for _ in range(8)]
    for a in adders:
        a.start()
    for a in adders:
        a.join()
    stop.set()
    t.join()
    assert not errors and len(cbs) == 1600
