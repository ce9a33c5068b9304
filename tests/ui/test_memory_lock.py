"""The lock screen left up for months (issue 19): its once-a-second work creates nothing that
stays. The status strip's texts change with the clock every second (the countdown, New York
time) and the PIN pad polls its lockout twice a second; after a warm-up, a thousand more of
those refreshes, each one drawn, leave the Python object count, the window's QObjects and the
QML page's objects where they were. (A binding or model that built one object per refresh and
kept it would add a thousand; bench/bench_memory.py measures the bytes over hours.)"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication

from tests.ui.conftest import PIN, enter, set_up_pin

WARM_UP = 200
REFRESHES = 1000


def _counts(w) -> tuple[int, int, int]:
    # The QObjects first: findChildren makes a Python wrapper for each (kept while the C++
    # object lives), which the Python count must already include both times.
    win = len(w.findChildren(QObject))
    page = len(w.pages["lock"].rootObject().findChildren(QObject))
    gc.collect()
    return len(gc.get_objects()), win, page


def _refresh(w, rig, n: int) -> None:
    app = QApplication.instance()
    for i in range(n):
        rig.clock.advance(seconds=1)  # the countdown and the time change: the strip rebinds
        w.header_vm.update_market()
        w.lock_vm._update_lock()  # the pad's lockout poll (its 500 ms timer's slot)
        app.processEvents()
        if i % 50 == 0:
            w.pages["lock"].grabFramebuffer()  # drawn, as the screen draws it


def test_lock_screen_refreshes_leave_no_objects_behind(qtbot, window, rig) -> None:
    w = window
    set_up_pin(w)
    qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=15000)
    w.lock()
    assert w.current_page() == "lock"
    strip = w.pages["lock"].rootObject().findChild(QObject, "stripMarket")
    before_text = strip.property("text")
    _refresh(w, rig, WARM_UP)
    py0, win0, page0 = _counts(w)
    _refresh(w, rig, REFRESHES)
    py1, win1, page1 = _counts(w)
    assert strip.property("text") != before_text  # the strip did follow the clock
    assert win1 == win0, f"window QObjects {win0} -> {win1}"
    assert page1 == page0, f"lock page QML objects {page0} -> {page1}"
    # The engine's worker reads cards behind the pad meanwhile (views in flight come and go):
    # a few hundred objects of slack, well under one per refresh.
    assert py1 - py0 < REFRESHES // 4, f"Python objects {py0} -> {py1}"


def test_idle_pad_polls_only_during_a_lockout(qtbot, window, pin_time) -> None:
    """The pad reads the lockout from system.db (on the GUI thread) only while one counts
    down; left up for months it read it twice a second for nothing."""
    w = window
    set_up_pin(w)
    qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=15000)
    reads = []
    real = w.guard.locked_for

    def counted() -> float:
        reads.append(1)
        return real()

    w.guard.locked_for = counted  # the same guard, its reads counted
    w.lock()
    reads.clear()
    assert not w.lock_vm._timer.isActive()  # the pad's 500 ms poll is not running
    qtbot.wait(600)  # one poll's interval, were it polling
    assert reads == [] and w.lock_vm.lockedFor == 0
    for _ in range(5):
        enter(w.lock_vm, "0000")
    assert w.lock_vm.lockedFor == 30 and w.lock_vm._timer.isActive()
    pin_time.advance(30)  # the countdown follows: it is polling now
    qtbot.waitUntil(lambda: w.lock_vm.lockedFor == 0, timeout=15000)
    reads.clear()
    assert not w.lock_vm._timer.isActive()  # and stops again once the lockout is over
    qtbot.wait(600)
    assert reads == []
    enter(w.lock_vm, PIN)
    qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=15000)
