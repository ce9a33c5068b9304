"""A risk guard change while another program holds the system DB's write lock (issue 10).

Storing a change waits for SQLite's write lock, up to its busy timeout (5 s). That wait runs
on the guard-edit thread, not the GUI's: the window keeps answering, the Settings editor says
"Saving…" with Save off (no second submit), Close leaves it, and the panic button on the
dashboard is tapped and handled while the change still waits. The change then reports the
lock by name; once the lock goes, Save again succeeds.

Real window (Qt offscreen), real engine on real SQLite files, and a real second sqlite3
connection holding ``BEGIN EXCLUSIVE`` on system.db, as a DB browser or a second app would.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time

from PySide6.QtCore import QObject, QPointF, Qt, QTimer

from app.engine.guard_edit import EDITS_KEY
from app.ui.screenshot import save_png
from db.connection import BUSY_TIMEOUT_MS
from tests.ui.conftest import SCREENSHOTS, unlocked_window
from tests.ui.qmlwalk import items, window_problems
from tests.ui.test_settings_guards import click, item, open_settings, type_keys

LOCK_TEXT = "another program holds the system database's write lock"


class GuiGaps:
    """The longest the GUI thread went without running a 10 ms timer (its event loop)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._beat)
        self._timer.start()

    def _beat(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self._last = now

    def stop(self) -> float:
        self._timer.stop()
        return self.longest


def tap_text(qtbot, widget, text: str) -> None:
    """A real click on the visible button of the page whose label is ``text``."""
    qtbot.wait(60)
    root = widget.rootObject()
    it = next(i for i in items(root) if i.property("text") == text and i.isVisible()
              and i.property("kind") is not None)
    p = it.mapToScene(QPointF(it.width() / 2, it.height() / 2))
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=p.toPoint())


def tap(qtbot, widget, name: str) -> None:
    qtbot.wait(60)
    it = widget.rootObject().findChild(QObject, name)
    assert it is not None and it.isVisible(), name
    p = it.mapToScene(QPointF(it.width() / 2, it.height() / 2))
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=p.toPoint())


def shot(qtbot, w, name: str) -> None:
    qtbot.wait(150)
    save_png(w, SCREENSHOTS / f"{w.width()}x{w.height()}-{name}.png")


def test_a_change_waiting_for_the_db_lock_leaves_the_window_and_stop_all_free(
        qtbot, window, rig) -> None:
    for t in ("AAPL", "MSFT"):
        rig.engine.create_algorithm("sma_crossover", t, 1000.0)
    w = unlocked_window(qtbot, window)
    w.schedule_refresh()
    qtbot.waitUntil(lambda: w.cards.count() == 2, timeout=15000)
    page = open_settings(qtbot, w)
    ed, prefs = w.settings_vm.guard_edit, w.settings_vm
    click(qtbot, page, "guardValue_algo_max_daily_loss_pct")
    type_keys(qtbot, page, "\u232b\u232b7")
    assert ed.editText == "7"

    gui = threading.get_native_id()
    saver_threads: set[int] = set()
    real_set = rig.engine.set_guard_limit

    def spy(*a, **k):  # records the thread only; the engine's own method does the work
        saver_threads.add(threading.get_native_id())
        return real_set(*a, **k)

    rig.engine.set_guard_limit = spy
    other = sqlite3.connect(rig.settings.system_db_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    gaps = GuiGaps()
    try:
        # 1. The editor stays open: "Saving…", Save off, then the lock named in the editor.
        t0 = time.perf_counter()
        click(qtbot, page, "guardSave")
        click_s = time.perf_counter() - t0
        assert ed.saving, "the change is still waiting for the lock when the tap returns"
        assert item(page, "guardSave").property("text") == "Saving\u2026"
        assert not item(page, "guardSave").property("active")
        assert item(page, "guardSaving").isVisible()
        assert item(page, "guardCancel").property("text") == "Close"
        shot(qtbot, w, "37-settings-guard-saving")
        w.resize(480, 800)
        shot(qtbot, w, "37-settings-guard-saving")
        assert not window_problems(w), window_problems(w)
        w.resize(800, 480)
        ed.save()  # a second submit while saving: nothing
        ed.key("5")  # nor typing over the value being saved
        assert ed.editText == "7"
        qtbot.waitUntil(lambda: not ed.saving, timeout=BUSY_TIMEOUT_MS * 4)
        assert LOCK_TEXT in ed.editError and "try again" in ed.editError, ed.editError
        assert ed.editName == "algo_max_daily_loss_pct" and ed.editText == "7"  # kept
        assert rig.engine.guards.limits.algo_max_daily_loss_pct == 10
        shot(qtbot, w, "38-settings-guard-locked")
        w.resize(480, 800)
        shot(qtbot, w, "38-settings-guard-locked")
        assert not window_problems(w), window_problems(w)
        w.resize(800, 480)

        # 2. Save again, still locked; Close, Back, and the panic button while it waits.
        click(qtbot, page, "guardSave")
        assert ed.saving
        saving_at_stop: list[bool] = []
        w.dash_vm.stopAllRequested.connect(lambda _liq: saving_at_stop.append(ed.saving))
        tap(qtbot, page, "guardCancel")  # "Close": the change goes on
        assert ed.editName == "" and "Saving" in prefs.message
        tap_text(qtbot, page, "\u2190 Back")
        qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=5000)
        dash = w.pages["dashboard"]
        tap(qtbot, dash, "stopAllButton")
        tap_text(qtbot, dash, "Stop, keep shares")
        t_stop = time.perf_counter()
        assert saving_at_stop == [True], "stop all was handled while the change waited"
        qtbot.waitUntil(lambda: w.dash_vm.message == "All algorithms stopped.",
                        timeout=BUSY_TIMEOUT_MS * 4)
        stop_s = time.perf_counter() - t_stop  # the engine's own wait for the lock: reported
        assert all(v.status == "stopped" for v in rig.engine.algorithm_views())
        qtbot.waitUntil(lambda: not ed.saving, timeout=BUSY_TIMEOUT_MS * 4)
        assert LOCK_TEXT in prefs.message and prefs.messageBad, prefs.message
        assert prefs.message.startswith("Algorithm: daily loss, % of its capital: ")
    finally:
        longest = gaps.stop()
        other.execute("ROLLBACK")
        other.close()
        rig.engine.set_guard_limit = real_set
    print(f"\nguard change under a foreign lock: the Save tap returned in {click_s * 1000:.0f} ms;"
          f" longest GUI-thread gap {longest * 1000:.0f} ms (busy timeout {BUSY_TIMEOUT_MS} ms);"
          f" stop all done {stop_s:.1f} s after its tap")
    # The event loop never stood still for the lock's wait (it did, 5.0 s, on the GUI thread).
    assert longest < BUSY_TIMEOUT_MS / 1000, longest
    assert saver_threads and gui not in saver_threads
    assert rig.engine.guards.limits.algo_max_daily_loss_pct == 10
    assert rig.engine.system.get_setting(EDITS_KEY) is None  # nothing half-stored
    w.show_page("settings")
    shot(qtbot, w, "39-settings-guard-refused-closed")

    # 3. The lock is gone: a retry succeeds, stored before shown, one history entry.
    click(qtbot, page, "guardValue_algo_max_daily_loss_pct")
    type_keys(qtbot, page, "\u232b\u232b7")
    click(qtbot, page, "guardSave")
    qtbot.waitUntil(lambda: ed.editName == "" and not ed.saving, timeout=BUSY_TIMEOUT_MS * 2)
    assert "10 % \u2192 7 %" in prefs.message and not prefs.messageBad
    assert rig.engine.guards.limits.algo_max_daily_loss_pct == 7
    stored = json.loads(rig.engine.system.get_setting(EDITS_KEY))
    assert stored["edits"]["algo_max_daily_loss_pct"]["value"] == 7
    assert len(stored["history"]) == 1


def test_the_guard_edit_thread_ends_with_the_window(qtbot, window, rig) -> None:
    w = unlocked_window(qtbot, window)
    page = open_settings(qtbot, w)
    ed = w.settings_vm.guard_edit
    click(qtbot, page, "guardValue_algo_max_orders_per_day")
    type_keys(qtbot, page, "\u232b\u232b\u232b50")
    click(qtbot, page, "guardSave")
    qtbot.waitUntil(lambda: ed.editName == "" and not ed.saving, timeout=10000)
    thread = ed._thread
    assert thread is not None and thread.isRunning()
    w.close()
    assert not thread.isRunning() and ed._thread is None


def test_lock_after_idle_under_the_db_lock_applies_and_says_it_was_not_stored(
        qtbot, window, rig) -> None:
    w = unlocked_window(qtbot, window)
    page = open_settings(qtbot, w)
    prefs = w.settings_vm
    seconds: list[int] = []
    prefs.idleChanged.connect(seconds.append)
    other = sqlite3.connect(rig.settings.system_db_path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    gaps = GuiGaps()
    try:
        tap_text(qtbot, page, "10 min")
        assert prefs.idleSeconds == 600 and seconds == [600]  # applied at once
        qtbot.waitUntil(lambda: prefs.messageBad, timeout=BUSY_TIMEOUT_MS * 4)
        assert "Lock after idle applies now but was not saved (database is locked)" in \
            prefs.message, prefs.message
    finally:
        longest = gaps.stop()
        other.execute("ROLLBACK")
        other.close()
    assert longest < BUSY_TIMEOUT_MS / 1000, longest
    assert rig.engine.system.get_setting("ui.idle_lock_seconds") is None
    tap_text(qtbot, page, "5 min")
    tap_text(qtbot, page, "10 min")  # once the lock is gone: stored, in the order tapped
    qtbot.waitUntil(lambda: rig.engine.system.get_setting("ui.idle_lock_seconds") == "600",
                    timeout=BUSY_TIMEOUT_MS * 2)


def test_the_screen_never_waits_for_the_engines_lock(qtbot, window, rig) -> None:
    """Stop all holds the engine's lock while it waits for a DB another program holds (10 s
    measured above); the Settings screen shows, types and checks against the limits it last
    read, and only the guard-edit thread waits for that lock."""
    w = unlocked_window(qtbot, window)
    page = open_settings(qtbot, w)
    ed = w.settings_vm.guard_edit
    held, release = threading.Event(), threading.Event()
    out: dict[str, bool] = {}

    def hold() -> None:  # as stop_all does, on the engine worker
        with rig.engine._lock:
            held.set()
            out["released_by_test"] = release.wait(BUSY_TIMEOUT_MS * 2 / 1000)

    th = threading.Thread(target=hold)
    th.start()
    assert held.wait(10)
    try:
        click(qtbot, page, "guardValue_algo_max_orders_per_day")
        assert ed.editName == "algo_max_orders_per_day" and ed.editText == "100"
        type_keys(qtbot, page, "\u232b\u232b\u232b50")
        click(qtbot, page, "guardSave")
        assert ed.saving and rig.engine.guards.limits.algo_max_orders_per_day == 100
    finally:
        release.set()
        th.join(30)
    assert out["released_by_test"], "the GUI thread waited for the engine's lock"
    qtbot.waitUntil(lambda: ed.editName == "" and not ed.saving, timeout=10000)
    assert rig.engine.guards.limits.algo_max_orders_per_day == 50
    row = next(r for r in ed.rows if r["name"] == "algo_max_orders_per_day")
    assert row["shown"] == "50" and row["edited"]
