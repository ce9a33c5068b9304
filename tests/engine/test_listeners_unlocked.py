"""Engine listeners are called outside the core's lock (CoreLock in app/engine/core.py).

A listener that hands a fill to another thread and waits for it (what a UI bridge or a
notifier might do) must not deadlock the engine: the other thread reads the engine, which
takes the core's lock. Before this was fixed, ``on_fill`` ran under the lock and the other
thread waited for it forever (here: for the 2 s the test allows).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from tests.engine.conftest import T0


class WaitingListener:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.seen: list[tuple[int, int]] = []
        self.held_lock: list[bool] = []
        self.timeouts = 0

    def on_fill(self, algo_id: int, tx: dict) -> None:
        self.held_lock.append(self.engine._lock.held())
        done = threading.Event()

        def read() -> None:  # another thread asks the engine for the card
            view = self.engine.algorithm_view(algo_id)
            self.seen.append((algo_id, view.position))
            done.set()

        threading.Thread(target=read, daemon=True).start()
        if not done.wait(2.0):
            self.timeouts += 1


def test_fill_listener_may_wait_for_a_thread_that_reads_the_engine(make_engine, clock):
    engine = make_engine()
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 5})
    lst = WaitingListener(engine)
    engine.add_listener(lst)
    clock.set(T0 + timedelta(seconds=2))
    r = engine.run_tick(T0)
    assert [f["shares"] for f in r.fills] == [5]
    assert lst.timeouts == 0 and lst.held_lock == [False]
    assert lst.seen == [(a, 5)]  # the card already shows the fill the listener was told of


def test_listeners_run_after_the_outermost_release_in_order(make_engine):
    engine = make_engine()
    calls: list[tuple[str, bool]] = []

    class Spy:
        def on_algorithms_changed(self) -> None:
            calls.append(("changed", engine._lock.held()))

    engine.add_listener(Spy())
    with engine._lock:
        with engine._lock:
            engine._emit("on_algorithms_changed")
        assert calls == []  # still inside the outer step
        engine._emit("on_algorithms_changed")
    assert calls == [("changed", False), ("changed", False)]


def test_a_fill_pushes_a_snapshot_of_the_algorithm_from_the_ledger(make_engine, clock,
                                                                   market_store, calendar):
    """The card's figures come with the event (value and P&L from the engine's ledger), one
    snapshot per algorithm per step, outside the lock."""
    from tests.engine.conftest import put_bars

    engine = make_engine(commission=0.01)
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 5})
    got: list = []

    class Cards:
        def on_snapshot(self, view, account) -> None:
            got.append((view, account, engine._lock.held()))

    engine.add_listener(Cards())
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)
    assert len(got) == 1
    view, account, held = got[0]
    assert not held and view.id == a and view.position == 5
    assert view.cash == pytest.approx(5000 - 5 * 100.0 - 0.05)  # the commission is in it
    assert view.pnl == pytest.approx(-0.05) and view.value == pytest.approx(4999.95)
    assert account is None or account.cash > 0
    put_bars(market_store, "AAA", 120.0, T0, T0 + timedelta(minutes=2), calendar)
    clock.set(T0 + timedelta(minutes=1, seconds=2))
    engine.run_tick(T0 + timedelta(minutes=1))
    view = got[-1][0]
    assert view.position == 10 and view.last_price == 120.0
    assert view.pnl == pytest.approx(engine.algorithm_view(a).pnl)


def test_a_failing_deferred_call_never_breaks_the_locked_step(make_engine, caplog):
    engine = make_engine()
    done = []

    def broken() -> None:
        raise RuntimeError("listener bug")

    with engine._lock:
        engine._lock.later(broken)
        engine._lock.later(done.append, "next")
    assert done == ["next"]  # the others still ran, nothing raised into the step
    assert "listener bug" in caplog.text


def test_stop_pause_and_resume_push_snapshots(make_engine, clock, system_store):
    engine = make_engine()
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 1})
    got: list = []

    class Cards:
        def on_snapshot(self, view, account) -> None:
            got.append((view.id, view.status, view.position))

    engine.add_listener(Cards())
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)
    system_store.conn.execute("UPDATE sim_positions SET qty = 3 WHERE ticker = 'AAA'")
    engine.watch_positions(T0)
    engine.resume_algorithm(a)  # lifts the pause
    engine.stop_algorithm(a)
    engine.resume_algorithm(a)
    assert got == [(a, "running", 1), (a, "paused", 1), (a, "running", 1), (a, "stopped", 1),
                   (a, "running", 1)]
