"""The QML engine's JavaScript garbage is collected every interval (issue 19), not only when
the engine's allocation threshold is reached (tens of minutes for a window's once-a-second
bindings, during which RSS rose like a leak)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtQml import QQmlComponent

from app.ui.jsgc import JsCollector, start_js_collector
from app.ui.qml import make_engine, shared_engine

# One JS-owned object (no parent), handed to the watcher, then dropped: garbage.
QML = b"""
import QtQml
QtObject {
    required property QtObject spy
    property Component kind: Component { QtObject {} }
    Component.onCompleted: spy.watch(kind.createObject(null))
}
"""


class Spy(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.watched = 0
        self.gone = 0

    @Slot(QObject)
    def watch(self, obj: QObject) -> None:
        self.watched += 1
        obj.destroyed.connect(self._gone)

    def _gone(self) -> None:
        self.gone += 1


def _garbage(engine, spy: Spy) -> QObject:
    comp = QQmlComponent(engine)
    comp.setData(QML, QUrl())
    root = comp.createWithInitialProperties({"spy": spy})
    assert root is not None, comp.errorString()
    return root


def test_collector_frees_js_garbage_at_its_interval(qtbot) -> None:
    engine = make_engine()
    spy = Spy()
    root = _garbage(engine, spy)
    assert spy.watched == 1
    qtbot.wait(300)  # a moment of a running event loop: the engine alone keeps it
    assert spy.gone == 0
    collector = start_js_collector(engine, interval_s=0.05)
    qtbot.waitUntil(lambda: spy.gone == 1, timeout=5000)
    assert collector.runs >= 1 and collector.longest_ms < 1000
    assert start_js_collector(engine) is collector  # one per engine
    del root
    engine.deleteLater()


def test_the_shared_engine_has_one(qapp) -> None:
    # qapp: the engine needs the application object. Without the fixture this test aborted
    # the worker whenever it was the first Qt test xdist gave it (a CI failure of 2026-12-03).
    engine = shared_engine()
    found = engine.findChildren(JsCollector)
    assert len(found) == 1 and found[0]._timer.isActive()
    assert found[0]._timer.interval() == 60_000


def test_an_engine_before_the_application_is_an_error_not_an_abort() -> None:
    """Qt aborts the process (SIGABRT) on a QQmlEngine made before the application object;
    make_engine says so as a Python error instead. A fresh interpreter, so no QApplication."""
    code = ("from app.ui.qml import shared_engine\n"
            "try:\n    shared_engine()\n"
            "except RuntimeError as e:\n    print('refused:', e)\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=env, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "refused: a QML engine needs the QApplication" in done.stdout
