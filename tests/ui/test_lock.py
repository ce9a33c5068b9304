"""PIN set-up, unlock, wrong PIN, lockout timing and idle lock through the real window."""

from __future__ import annotations

from PySide6.QtCore import QObject, QPoint, Qt
from PySide6.QtTest import QTest

from tests.ui.conftest import PIN, enter, set_up_pin


def qml_text(widget, name: str) -> str:
    obj = widget.rootObject().findChild(QObject, name)
    assert obj is not None, name
    return obj.property("text")


def test_first_start_asks_for_new_pin_twice(qtbot, window) -> None:
    w = window
    lock = w.pages["lock"]
    assert w.current_page() == "lock" and not w.header.isVisible()
    assert qml_text(lock, "lockTitle") == "Choose a PIN"
    enter(w.lock_vm, PIN)
    assert qml_text(lock, "lockTitle") == "Repeat the new PIN"
    enter(w.lock_vm, "1357")  # differs: start again
    assert "differ" in qml_text(lock, "lockMessage")
    assert qml_text(lock, "lockTitle") == "Choose a PIN"
    assert not w.guard.is_set
    set_up_pin(w)
    assert w.guard.is_set
    qtbot.waitUntil(lambda: w.current_page() == "dashboard")
    assert w.header.isVisible()


def test_unlock_wrong_pin_and_lockout(qtbot, window, pin_time) -> None:
    w = window
    set_up_pin(w)
    w.lock()
    lock = w.pages["lock"]
    assert qml_text(lock, "lockTitle") == "Enter PIN"
    enter(w.lock_vm, "0000")
    assert qml_text(lock, "lockMessage") == "Wrong PIN. 4 tries left."
    assert w.current_page() == "lock"
    for _ in range(4):
        enter(w.lock_vm, "0000")
    assert w.lock_vm.lockedFor == 30
    assert "Try again in 30 s" in qml_text(lock, "lockMessage")
    # Keys do nothing while locked: the right PIN cannot even be typed.
    enter(w.lock_vm, PIN)
    assert w.current_page() == "lock" and w.lock_vm.entered == 0
    # The pad's countdown follows (injected) time.
    pin_time.advance(20)
    qtbot.waitUntil(lambda: w.lock_vm.lockedFor == 10, timeout=15000)
    pin_time.advance(10)
    qtbot.waitUntil(lambda: w.lock_vm.lockedFor == 0, timeout=15000)
    assert qml_text(lock, "lockMessage") == ""
    enter(w.lock_vm, "0000")  # the 6th miss doubles the lock
    assert w.lock_vm.lockedFor == 60
    pin_time.advance(60)
    qtbot.waitUntil(lambda: w.lock_vm.lockedFor == 0, timeout=15000)
    enter(w.lock_vm, PIN)
    qtbot.waitUntil(lambda: w.current_page() == "dashboard")


def test_idle_lock_returns_to_page_in_use(qtbot, window, idle_time) -> None:
    w = window
    set_up_pin(w)
    w.settings_vm.setIdleSeconds(60)  # applied at once, stored off the GUI thread
    qtbot.waitUntil(lambda: w.engine.system.get_setting("ui.idle_lock_seconds") == "60",
                    timeout=15000)
    w.dash_vm.settings()
    assert w.current_page() == "settings"
    idle_time.advance(59)
    w.idle.poll()
    assert w.current_page() == "settings"
    # A tap on the screen counts as activity.
    qtbot.mouseMove(w.pages["settings"])
    qtbot.mouseClick(w.pages["settings"], Qt.MouseButton.LeftButton)
    idle_time.advance(30)
    w.idle.poll()
    assert w.current_page() == "settings"
    # So does a finger on the touchscreen.
    page = w.pages["settings"]
    device = QTest.createTouchDevice()
    QTest.touchEvent(page, device).press(7, QPoint(300, 300), page).commit()
    QTest.touchEvent(page, device).release(7, QPoint(300, 300), page).commit()
    idle_time.advance(45)
    w.idle.poll()
    assert w.current_page() == "settings"
    idle_time.advance(16)
    qtbot.waitUntil(lambda: w.current_page() == "lock", timeout=15000)  # the 1 s poll timer
    assert w.lock_vm.title == "Enter PIN"
    enter(w.lock_vm, PIN)
    assert w.current_page() == "settings"


def test_change_pin(qtbot, window) -> None:
    w = window
    set_up_pin(w)
    w.settings_vm.changePin()
    assert w.current_page() == "lock" and w.lock_vm.mode == "change_old"
    enter(w.lock_vm, "9999")
    assert w.lock_vm.mode == "change_old" and "Wrong PIN" in w.lock_vm.message
    enter(w.lock_vm, PIN)
    enter(w.lock_vm, "135790")
    enter(w.lock_vm, "135790")
    assert w.current_page() == "settings"
    assert qml_text(w.pages["settings"], "settingsMessage") == "PIN changed."
    assert w.guard.check("135790").ok and not w.guard.check(PIN).ok


def test_desktop_keyboard_types_the_pin(qtbot, window) -> None:
    w = window
    lock = w.pages["lock"]
    for _ in range(2):
        qtbot.keyClicks(lock, PIN)
        qtbot.keyClick(lock, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=15000)
    assert w.guard.check(PIN).ok


def test_pin_hash_runs_off_the_gui_thread(qtbot, window) -> None:
    w = window
    set_up_pin(w)
    w.lock()
    for d in PIN:
        w.lock_vm.digit(d)
    w.lock_vm.submit()
    # submit() returned before scrypt finished: the pad says so and ignores keys meanwhile.
    assert w.lock_vm.busy and w.lock_vm.message == "Checking\u2026"
    w.lock_vm.digit("1")
    assert w.lock_vm.entered == 0 and not w.lock_vm.canSubmit
    qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=15000)
    assert not w.lock_vm.busy


def test_ctrl_q_closes_and_shuts_down(qtbot, window) -> None:
    w = window
    set_up_pin(w)
    qtbot.keyClick(w.pages["dashboard"], Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=15000)
    assert w._closed and not w.worker_thread.isRunning()
