"""Settings: the risk guards changed by touch (issue 10) and the kiosk's rotation (issue 18).

The real window on the rig (real engine, real SQLite, Qt offscreen): a guard's value tapped,
typed on the number pad, saved; a bad value refused on the screen with the engine's message;
a loosening in LIVE asks for the PIN through the window's own PIN pad; a change made from
the command line shows without a tap. Screenshots at 800x480 and 1280x800 (looked at)."""

from __future__ import annotations

import json
import logging
import tomllib
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QPointF, QRectF, Qt

from app.engine.guard_edit import EDITS_KEY
from app.ui.screenshot import save_png
from app.ui.settings_vm import SettingsViewModel
from tests.ui.conftest import PIN, SCREENSHOTS, enter, unlocked_window
from tests.ui.qmlwalk import window_problems


def item(widget, name: str) -> QObject:
    """The named item, Repeater delegates included (they are not QObject children)."""
    from tests.ui.qmlwalk import items

    root = widget.rootObject()
    found = root.findChild(QObject, name) or next(
        (it for it in items(root) if it.objectName() == name), None)
    assert found is not None, name
    return found


def click(qtbot, widget, name: str) -> None:
    """A real mouse click at the centre of the named item, scrolled into view first."""
    qtbot.wait(60)
    it = item(widget, name)
    assert it.isVisible(), f"{name} is not visible"
    flick = widget.rootObject().findChild(QObject, "settingsFlick")
    p = it.mapToScene(QPointF(it.width() / 2, it.height() / 2))
    inside = flick.mapRectToScene(QRectF(0, 0, flick.width(), flick.height()))
    if flick.isAncestorOf(it) and not inside.adjusted(0, 30, 0, -30).contains(p):
        y = it.mapToItem(flick.property("contentItem"), QPointF(0, 0)).y()
        top = float(flick.property("contentHeight")) - float(flick.property("height"))
        flick.setProperty("contentY", max(0.0, min(y - 40, top)))  # within bounds: no bounce
        qtbot.wait(200)
        p = it.mapToScene(QPointF(it.width() / 2, it.height() / 2))
        assert inside.contains(p), f"{name} cannot be scrolled into view"
    assert 0 <= p.x() < widget.width() and 0 <= p.y() < widget.height(), name
    assert it.width() >= 48 and it.height() >= 48, f"{name} is too small to tap"
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=p.toPoint())


def type_keys(qtbot, page, text: str) -> None:
    """Taps on the page's number pad keys (found by their label)."""
    from tests.ui.qmlwalk import items

    root = page.rootObject()
    for ch in text:
        key = next(k for k in items(root) if k.property("kind") == "key"
                   and k.property("text") == ch and k.isVisible())
        p = key.mapToScene(QPointF(key.width() / 2, key.height() / 2))
        qtbot.mouseClick(page, Qt.MouseButton.LeftButton, pos=p.toPoint())
        qtbot.wait(10)


def shot(qtbot, w, name: str) -> None:
    qtbot.wait(150)  # the next frame: what the screen shows after the last change
    save_png(w, SCREENSHOTS / f"{w.width()}x{w.height()}-{name}.png")


def open_settings(qtbot, w):
    w.dash_vm.settings()
    qtbot.waitUntil(lambda: w.current_page() == "settings"
                    and len(w.settings_vm.guard_edit.rows) == 12, timeout=5000)
    return w.pages["settings"]


@pytest.mark.parametrize("size", [(800, 480), (1280, 800), (480, 800)],
                         ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_guard_changed_by_touch_is_stored_and_used(qtbot, window, rig, size, caplog) -> None:
    caplog.set_level(logging.WARNING)
    w = unlocked_window(qtbot, window)
    w.resize(*size)
    page = open_settings(qtbot, w)
    ed = w.settings_vm.guard_edit
    qtbot.waitUntil(lambda: len(ed.rows) == 12, timeout=5000)
    shot(qtbot, w, "30-settings-guards")
    assert not window_problems(w), window_problems(w)
    click(qtbot, page, "guardValue_algo_max_daily_loss_pct")
    assert ed.editName == "algo_max_daily_loss_pct" and ed.editText == "10"
    # A value past the range: refused on the screen, nothing stored or changed.
    type_keys(qtbot, page, "\u232b\u232b250")
    click(qtbot, page, "guardSave")
    assert "more than the most it takes, 100 %" in ed.editError
    shot(qtbot, w, "31-settings-guard-refused")
    assert rig.engine.guards.limits.algo_max_daily_loss_pct == 10
    assert rig.engine.system.get_setting(EDITS_KEY) is None
    type_keys(qtbot, page, "\u232b\u232b\u232b7.5")
    assert ed.editText == "7.5"
    shot(qtbot, w, "32-settings-guard-keypad")
    assert not window_problems(w), window_problems(w)
    click(qtbot, page, "guardSave")
    # Saved on the guard-edit thread; stored before shown: the DB has it by the time the
    # screen says so.
    qtbot.waitUntil(lambda: ed.editName == "" and not ed.saving, timeout=5000)
    assert rig.engine.guards.limits.algo_max_daily_loss_pct == 7.5
    stored = json.loads(rig.engine.system.get_setting(EDITS_KEY))
    assert stored["edits"]["algo_max_daily_loss_pct"]["value"] == 7.5
    assert stored["history"][-1]["source"] == "on the Settings screen"
    assert "10 % \u2192 7.5 %" in w.settings_vm.message
    row = next(r for r in ed.rows if r["name"] == "algo_max_daily_loss_pct")
    assert row["shown"] == "7.5 %" and row["edited"]
    assert item(page, "guardValue_algo_max_daily_loss_pct").property("text") == "7.5 % *"
    assert any("changed on the Settings screen from 10 % to 7.5 %" in r.getMessage()
               for r in caplog.records)
    # The choice: keep / sell, no keypad.
    shot(qtbot, w, "34-settings-guard-saved")
    click(qtbot, page, "guardValue_on_guard_stop")
    assert ed.editName == "on_guard_stop" and ed.editKind == "choice", ed.editName
    click(qtbot, page, "choiceSell")
    shot(qtbot, w, "35-settings-guard-choice")
    click(qtbot, page, "guardSave")
    qtbot.waitUntil(lambda: ed.editName == "" and not ed.saving, timeout=5000)
    assert rig.engine.guards.limits.on_guard_stop == "sell"
    # Cancel leaves everything as it was.
    click(qtbot, page, "guardValue_algo_max_orders_per_day")
    type_keys(qtbot, page, "5")
    click(qtbot, page, "guardCancel")
    assert rig.engine.guards.limits.algo_max_orders_per_day == 100
    # The kiosk's rotation, by a tap: written to the config file in use.
    click(qtbot, page, "rotation90")
    cfg = rig.settings.config_path
    assert tomllib.loads(Path(cfg).read_text())["ui"]["rotation"] == 90
    assert "restarts" in item(page, "rotationNote").property("text")
    shot(qtbot, w, "36-settings-rotation")


def test_live_loosening_asks_the_window_for_the_pin(qtbot, window, rig) -> None:
    w = unlocked_window(qtbot, window)
    page = open_settings(qtbot, w)
    ed = w.settings_vm.guard_edit
    # The engine's mode decides the PIN rule; a real LIVE broker cannot run here, so this
    # demo engine (simulated broker) is told it is LIVE. Nothing else reads its mode here.
    rig.engine.mode = "live"
    click(qtbot, page, "guardValue_algo_max_drawdown_pct")
    assert ed.editName == "algo_max_drawdown_pct"
    click(qtbot, page, "guardOff")
    click(qtbot, page, "guardSave")
    qtbot.waitUntil(lambda: w.current_page() == "lock", timeout=5000)
    assert "Loosen a risk guard?" in w.lock_vm.subtitle and "25 % \u2192 off" in w.lock_vm.subtitle
    assert rig.engine.guards.limits.algo_max_drawdown_pct == 25  # not before the PIN
    shot(qtbot, w, "33-settings-guard-pin")
    enter(w.lock_vm, "000000")  # wrong: still locked, nothing changed
    assert w.current_page() == "lock" and rig.engine.guards.limits.algo_max_drawdown_pct == 25
    enter(w.lock_vm, PIN)
    qtbot.waitUntil(lambda: w.current_page() == "settings" and not ed.saving
                    and "25 % \u2192 off" in w.settings_vm.message, timeout=5000)
    assert rig.engine.guards.limits.algo_max_drawdown_pct == 0
    assert "25 % \u2192 off" in w.settings_vm.message
    # Tightening in LIVE: no PIN asked.
    click(qtbot, page, "guardValue_algo_max_drawdown_pct")
    type_keys(qtbot, page, "20")
    click(qtbot, page, "guardSave")
    qtbot.waitUntil(lambda: ed.editName == "" and not ed.saving, timeout=5000)
    assert w.current_page() == "settings" and rig.engine.guards.limits.algo_max_drawdown_pct == 20


def test_a_change_from_the_command_line_shows_without_a_tap(qtbot, window, rig) -> None:
    w = unlocked_window(qtbot, window)
    open_settings(qtbot, w)
    ed = w.settings_vm.guard_edit
    # As the control socket's thread does it (a plain thread, not the GUI's).
    rig.in_thread(lambda: rig.engine.set_guard_limit("algo_max_orders_per_day", 40,
                                                     source="from the command line"))
    qtbot.waitUntil(lambda: next(r for r in ed.rows if r["name"] == "algo_max_orders_per_day")
                    ["shown"] == "40", timeout=5000)


def test_rotation_is_written_to_the_config_and_restarts_only_under_the_kiosk(
        qtbot, rig, tmp_path) -> None:
    import dataclasses

    cfg = tmp_path / "autotrader.toml"
    cfg.write_text("# mine\nmode = \"demo\"\n\n[ui]\nidle_lock_seconds = 120  # two min\n")
    cfg.chmod(0o600)
    s = dataclasses.replace(rig.settings, config_path=str(cfg),
                            ui=dataclasses.replace(rig.settings.ui, kiosk=True))
    vm = SettingsViewModel(s, rig.engine.system, rig.clock, "demo",
                           env={"INVOCATION_ID": "abc"})
    restarts: list[bool] = []
    vm.restartRequested.connect(lambda: restarts.append(True))
    assert vm.rotation == 0 and not vm.canRestart
    vm.setRotation(90)
    text = cfg.read_text()
    assert tomllib.loads(text)["ui"] == {"rotation": 90, "idle_lock_seconds": 120}
    assert text.startswith("# mine\n") and "# two min" in text
    assert oct(cfg.stat().st_mode & 0o777) == "0o600"
    assert vm.rotation == 90 and "restarts" in vm.rotationNote and vm.canRestart
    vm.restartWindow()
    assert restarts == [True]
    vm.setRotation(270)
    assert tomllib.loads(cfg.read_text())["ui"]["rotation"] == 270
    # The kiosk's own start reads it back (the service's guard: picture and touch).
    from app.ops.display import configured_rotation

    assert configured_rotation({"AUTOTRADER_CONFIG": str(cfg)}) == (270, f"{cfg} line 5")
    # Not under the service: saved, no restart offered.
    plain = SettingsViewModel(s, rig.engine.system, rig.clock, "demo", env={})
    plain.setRotation(180)
    assert not plain.canRestart
    # The environment sets it: said, the file left alone.
    before = cfg.read_text()
    env_set = SettingsViewModel(s, rig.engine.system, rig.clock, "demo",
                                env={"AUTOTRADER_UI_ROTATION": "90"})
    env_set.setRotation(180)
    assert "AUTOTRADER_UI_ROTATION=90" in env_set.rotationNote and cfg.read_text() == before
    # A broken file: refused with the reason, left as it was.
    cfg.write_text("[ui\nrotation = ")
    plain.setRotation(90)
    assert "not valid TOML" in plain.rotationNote and cfg.read_text() == "[ui\nrotation = "


def test_restart_closes_the_window_for_the_service_to_start_again(qtbot, window) -> None:
    w = unlocked_window(qtbot, window)
    assert w.isVisible()
    w.settings_vm.restartRequested.emit()  # what "Restart the window now" sends
    qtbot.waitUntil(lambda: not w.isVisible() and w._closed, timeout=15000)
