"""Settings screen: demo speed applied at once and kept for the next start; key status only."""

from __future__ import annotations

from app.clock import SimulatedClock
from app.config import load_settings
from app.ui.app import apply_stored_settings
from tests.ui.conftest import SESSION_TIME, make_rig, set_up_pin


def test_demo_speed_applied_and_kept(qtbot, data_dir, plugin_dir) -> None:
    from app.ui.window import MainWindow

    rig = make_rig(data_dir, clock=SimulatedClock(SESSION_TIME, speed=60.0),
                   plugin_dir=plugin_dir)
    w = MainWindow(rig.settings, rig.engine.system, run_scheduler=False)
    qtbot.addWidget(w)
    w.attach_engine(rig.engine, rig.scheduler)
    set_up_pin(w)
    assert w.settings_vm.isDemo and w.settings_vm.demoSpeed == 60.0
    w.settings_vm.setDemoSpeed(300.0)
    assert rig.clock.speed == 300.0 and w.settings_vm.demoSpeed == 300.0
    w.shutdown()
    rig.engine.system.close()
    rig.engine.market.close()
    # Next start: the stored speed wins over the default, not over an explicit flag.
    plain = load_settings(overrides={"data_dir": str(data_dir)})
    assert apply_stored_settings(plain).demo.speed == 300.0
    flagged = load_settings(overrides={"data_dir": str(data_dir), "demo.speed": 30.0})
    assert apply_stored_settings(flagged).demo.speed == 30.0


def test_keys_shown_only_as_set(qtbot, window, rig) -> None:
    import dataclasses

    from app.config import Secret
    from app.ui.settings_vm import SettingsViewModel

    set_up_pin(window)
    assert window.settings_vm.keysText == "not set (demo only)"
    key, secret = "PK" + "A1" * 10, "S3cr3t" * 6
    s = dataclasses.replace(rig.settings, alpaca=dataclasses.replace(
        rig.settings.alpaca, key_id=Secret(key), secret_key=Secret(secret)))
    vm = SettingsViewModel(s, rig.engine.system, rig.clock, "paper")
    shown = " ".join(str(vm.property(p)) for p in ("keysText", "modeText", "aboutText"))
    assert vm.keysText == "set" and key not in shown and secret not in shown


def test_back_stays_put_while_the_settings_scroll(qtbot, window) -> None:
    """Issue 12: Back sat inside the scrolling column and went off screen with it; now it is
    pinned above the part that scrolls, at both sizes, and still goes back."""
    from PySide6.QtCore import QObject, QPointF, Qt

    set_up_pin(window)
    qtbot.waitUntil(lambda: window.current_page() == "dashboard", timeout=15000)
    for size in ((800, 480), (1920, 1080)):
        window.resize(*size)
        window._open_settings()
        qtbot.wait(150)
        page = window.pages["settings"]
        root = page.rootObject()
        back = root.findChild(QObject, "settingsBackButton")
        flick = root.findChild(QObject, "settingsFlick")
        before = back.mapToScene(QPointF(0, 0))
        assert before.y() >= 0 and before.y() + back.height() <= page.height()
        if size == (800, 480):  # the settings do not all fit: they scroll
            assert flick.property("contentHeight") > flick.property("height")
        flick.setProperty("contentY", max(0.0, flick.property("contentHeight")
                                          - flick.property("height")))
        qtbot.wait(50)
        assert back.isVisible() and back.mapToScene(QPointF(0, 0)) == before
        centre = back.mapToScene(QPointF(back.width() / 2, back.height() / 2)).toPoint()
        qtbot.mouseClick(page, Qt.MouseButton.LeftButton, pos=centre)
        qtbot.waitUntil(lambda: window.current_page() == "dashboard", timeout=5000)
