"""The PIN pad shown before the rest of the window (issue 15, start to first frame): what is
typed on it before the window is whole counts, wrong tries count toward the lockout, and the
right PIN leads to the dashboard; a system DB that cannot be read early takes the full path
(its clear message). The window is opened as ``run_gui`` opens it (``start_window``)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt

from app.config import load_settings
from app.security import FAILURES_KEY, PIN_HASH_KEY, PinGuard
from app.ui.app import Startup, start_window
from app.ui.early_lock import EarlySettings, StoreNotOpenError
from app.ui.window import MainWindow
from db.system import SystemStore
from tests.ui.conftest import PIN


def settings_for(tmp_path: Path):
    return load_settings(path=tmp_path / "absent.toml", env={},
                         overrides={"data_dir": str(tmp_path / "data")})


def with_pin(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "system.db"
    store = SystemStore(path)
    PinGuard(store).set_pin(PIN)
    store.close()
    return path


def qml_text(widget, name: str) -> str:
    obj = widget.rootObject().findChild(QObject, name)
    assert obj is not None, name
    return obj.property("text")


@pytest.fixture
def opened(qtbot, tmp_path, monkeypatch):
    """``start_window`` on a data folder with a PIN set. The engine's build is only recorded
    here (it is built after the first frame in tests/ui/test_first_frame_imports.py)."""
    asked: list[int] = []
    monkeypatch.setattr(Startup, "start_engine", lambda self: asked.append(1))
    with_pin(tmp_path)
    startup = start_window(settings_for(tmp_path), run_scheduler=False)
    assert isinstance(startup, Startup)
    w = startup.window
    qtbot.addWidget(w)
    w.resize(800, 480)
    yield startup, asked
    w.close()
    for store in startup.stores():
        store.close()


def test_keys_typed_before_the_window_is_whole_unlock_to_the_dashboard(
        qtbot, opened, monkeypatch) -> None:
    startup, asked = opened
    w = startup.window
    lock = w.pages["lock"]
    assert w.current_page() == "lock" and not w.finished and startup.system is None
    assert qml_text(lock, "lockTitle") == "Enter PIN"
    # Hold the rest of the window back to type on the pad alone, between its first frame and
    # the rest (there, keys wait in the event queue for the few tenths of a second it takes).
    finish, held = MainWindow.finish, []
    monkeypatch.setattr(MainWindow, "finish", lambda self, *a: held.append(a))
    w.show()
    qtbot.waitUntil(lambda: bool(held), timeout=10_000)  # the first frame was drawn
    qtbot.keyClicks(lock, PIN[:3])
    assert w.lock_vm.entered == 3 and not w.finished and asked == [1]
    finish(w, *held[0])
    # The same pad, what was typed kept; the rest built around it.
    assert w.finished and w.pages["lock"] is lock and w.lock_vm.entered == 3
    assert startup.system is not None and w.system is startup.system
    assert lock.rootObject().property("header") is w.header_vm
    assert not w.header.isVisible() and w.stack.currentWidget() is lock
    qtbot.keyClicks(lock, PIN[3:])
    qtbot.keyClick(lock, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=15_000)
    assert w.header.isVisible() and w.stack.currentWidget() is w._holders["dashboard"]


def test_a_wrong_pin_before_the_window_is_whole_counts(qtbot, opened) -> None:
    startup, _ = opened
    w = startup.window
    lock = w.pages["lock"]
    for d in "000000":  # what the pad's keys call
        w.lock_vm.digit(d)
    w.lock_vm.submit()  # checked on its thread, its count saved once the store is open
    assert w.lock_vm.busy and not w.finished
    w.show()
    qtbot.waitUntil(lambda: qml_text(lock, "lockMessage") == "Wrong PIN. 4 tries left.",
                    timeout=15_000)
    assert startup.system.get_setting(FAILURES_KEY) == "1"  # stored: a restart keeps it
    for d in PIN:
        w.lock_vm.digit(d)
    w.lock_vm.submit()
    qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=15_000)
    assert startup.system.get_setting(FAILURES_KEY) == "0"


def test_unlocked_before_the_window_is_whole_opens_the_dashboard_once_it_is(
        qtbot, opened, monkeypatch) -> None:
    startup, _ = opened
    w = startup.window
    finish, held = MainWindow.finish, []
    monkeypatch.setattr(MainWindow, "finish", lambda self, *a: held.append(a))
    w.show()
    qtbot.waitUntil(lambda: bool(held), timeout=10_000)
    for d in PIN:
        w.lock_vm.digit(d)
    w.lock_vm.submit()
    qtbot.waitUntil(lambda: not w.lock_vm.busy, timeout=15_000)  # checked: right
    assert w.current_page() == "lock" and not w.finished
    finish(w, *held[0])
    assert w.current_page() == "dashboard" and w.header.isVisible()


def test_first_start_sets_the_pin_on_the_early_pad(qtbot, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(Startup, "start_engine", lambda self: None)
    startup = start_window(settings_for(tmp_path), run_scheduler=False)
    assert isinstance(startup, Startup)
    w = startup.window
    qtbot.addWidget(w)
    assert not (tmp_path / "data" / "system.db").exists()  # nothing created before the frame
    assert w.lock_vm.mode == "setup"
    w.resize(800, 480)
    w.show()
    qtbot.waitUntil(lambda: w.finished, timeout=10_000)
    for _ in range(2):
        qtbot.keyClicks(w.pages["lock"], PIN)
        qtbot.keyClick(w.pages["lock"], Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.current_page() == "dashboard", timeout=15_000)
    assert startup.system.get_setting(PIN_HASH_KEY).startswith("scrypt$")
    w.close()
    startup.system.close()


def test_a_corrupt_system_db_says_so_before_any_window(tmp_path, capsys) -> None:
    path = tmp_path / "data" / "system.db"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a database " * 200)
    assert start_window(settings_for(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "autotrader: " in err and "system.db is not a usable SQLite database" in err


def test_early_settings_read_and_hand_over(tmp_path) -> None:
    path = with_pin(tmp_path)
    early = EarlySettings.read(path)
    assert early.get_setting(PIN_HASH_KEY).startswith("scrypt$")
    assert early.get_setting("absent", "d") == "d"
    with pytest.raises(StoreNotOpenError):  # the GUI thread never waits for the store
        early.set_setting(FAILURES_KEY, "2")
    # Another thread's write waits for the store, then goes to it.
    store = SystemStore(path)
    done = threading.Event()
    t = threading.Thread(target=lambda: (early.set_setting(FAILURES_KEY, "2"), done.set()))
    t.start()
    time.sleep(0.1)
    assert not done.is_set()
    early.attach(store)
    t.join(10)
    assert done.is_set() and store.get_setting(FAILURES_KEY) == "2"
    assert early.get_setting(FAILURES_KEY) == "2"
    store.close()
    # Missing file: empty (set-up), and nothing created; a locked one raises (full path).
    assert EarlySettings.read(tmp_path / "none" / "system.db").get_setting(PIN_HASH_KEY) is None
    assert not (tmp_path / "none").exists()
    holder = sqlite3.connect(path)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        EarlySettings.read(path)
    holder.rollback()
    holder.close()
