"""Real taps on the QML: a touch tap and a mouse click reach the view models."""

from __future__ import annotations

from PySide6.QtCore import QObject, QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from tests.ui.conftest import PIN


def centre(widget, name: str) -> QPoint:
    item = widget.rootObject().findChild(QObject, name)
    assert item is not None, name
    assert item.isVisible() and item.property("active") is not False
    assert item.width() >= 48 and item.height() >= 48  # a finger-sized target
    return item.mapToScene(QPointF(item.width() / 2, item.height() / 2)).toPoint()


_touch_ids = iter(range(1, 1000))


def tap(qtbot, widget, name: str) -> None:
    """A one-finger tap, as the touchscreen sends it (each touch gets a new point id, as
    real panels do)."""
    device = QTest.createTouchDevice()
    p = centre(widget, name)
    point = next(_touch_ids)
    # The point's widget must be named: without it QTest reads it as window coordinates.
    QTest.touchEvent(widget, device).press(point, p, widget).commit()
    qtbot.wait(20)
    QTest.touchEvent(widget, device).release(point, p, widget).commit()


def test_touch_and_mouse_taps(qtbot, window) -> None:
    w = window
    lock = w.pages["lock"]
    for _ in range(2):
        qtbot.keyClicks(lock, PIN)
        qtbot.waitUntil(lambda: w.lock_vm.canSubmit, timeout=1000)
        qtbot.wait(50)  # the OK key turns active on the next frame
        tap(qtbot, lock, "pinOk")
    qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=15000)

    dash = w.pages["dashboard"]
    qtbot.wait(50)
    tap(qtbot, dash, "newButton")
    qtbot.waitUntil(lambda: w.current_page() == "new", timeout=15000)

    new = w.pages["new"]
    qtbot.waitUntil(lambda: bool(w.new_vm.plugins), timeout=15000)
    w.new_vm.choosePlugin("sma_crossover")
    qtbot.keyClicks(new, "aapl")
    assert w.new_vm.ticker == "AAPL"
    qtbot.wait(50)
    tap(qtbot, new, "nextButton")
    qtbot.waitUntil(lambda: w.new_vm.step == "capital", timeout=15000)
    # A mouse works as well (a desktop window).
    qtbot.wait(50)
    qtbot.mouseClick(new, Qt.MouseButton.LeftButton, pos=centre(new, "cancelButton"))
    # With a ticker chosen, leaving asks first: the second Cancel leaves.
    qtbot.waitUntil(lambda: w.new_vm.leaveAsked, timeout=5000)
    assert w.current_page() == "new"
    qtbot.wait(50)
    qtbot.mouseClick(new, Qt.MouseButton.LeftButton, pos=centre(new, "cancelButton"))
    qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=15000)
