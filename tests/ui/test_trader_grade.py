"""Issue 12, driven with real clicks in the real window: honest status, the full reason,
guarded selling, Detail after a Delete, banners, the ticker check, the confirm step at 480 px,
declared indicators, the session chart. Screenshots of each screen go to /tmp/autotrader-shots
(set AUTOTRADER_SHOTS to change it) at 800x480 and 1920x1080."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QPointF, Qt

from app.ui import dashboard
from app.ui.screenshot import save_png
from tests.ui.conftest import PIN, enter, unlocked_window, wait_account

SHOTS = Path(os.environ.get("AUTOTRADER_SHOTS", "/tmp/autotrader-shots"))
SIZES = [(800, 480), (1920, 1080)]

RSI = '''
"""RSI test plugin: declares no chart lines."""


class Algorithm:
    period = 14
    oversold = 30

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return ("hold", 0)
'''

SEVEN = '''
"""Seven parameters, to fill the confirm step."""


class Algorithm:
    sma_short = 5
    sma_long = 30
    threshold = 0.5
    max_shares = 100
    cooldown_minutes = 15
    use_trailing_stop = True
    trailing_stop_pct = 2.5
    indicators = (("sma", "sma_short"), ("sma", "sma_long"))

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return ("hold", 0)
'''


@pytest.fixture
def plugin_dir(plugin_dir: Path) -> Path:
    (plugin_dir / "rsi_dip.py").write_text(RSI)
    (plugin_dir / "seven_knobs.py").write_text(SEVEN)
    return plugin_dir


def item(widget, name: str) -> QObject:
    found = widget.rootObject().findChild(QObject, name)
    assert found is not None, name
    return found


def click(qtbot, widget, name: str) -> None:
    """A real mouse click at the centre of the named QML item, which must be on screen."""
    qtbot.wait(60)  # a page just shown lays out on its next frame
    it = item(widget, name)
    assert it.isVisible(), f"{name} is not visible"
    p = it.mapToScene(QPointF(it.width() / 2, it.height() / 2))
    assert 0 <= p.x() < widget.width() and 0 <= p.y() < widget.height(), \
        f"{name} at {p} is outside the {widget.width()}x{widget.height()} view"
    assert it.width() >= 48 and it.height() >= 48, f"{name} is too small to tap"
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=p.toPoint())


def tick(rig, minutes: int = 1) -> None:
    for _ in range(minutes):
        minute = rig.clock.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
        rig.clock.set(minute + timedelta(seconds=2))
        rig.in_thread(lambda m=minute: rig.engine.run_tick(m))


def shot(w, size: tuple[int, int], name: str) -> None:
    save_png(w, SHOTS / f"{size[0]}x{size[1]}-{name}.png")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_failing_status_reason_and_guarded_sell(qtbot, window, rig, size) -> None:
    crash = rig.engine.create_algorithm("crashes", "NVDA", 5000.0)
    hold = rig.engine.create_algorithm("buy_once", "MSFT", 8000.0)
    rsi = rig.engine.create_algorithm("rsi_dip", "AAPL", 3000.0)
    rig.engine.start()
    tick(rig, 2)
    w = unlocked_window(qtbot, window)
    w.resize(*size)
    w.schedule_refresh()
    qtbot.waitUntil(lambda: w.cards.count() == 3
                    and (w.cards.card(crash) or {}).get("status") == "failing"
                    and w.cards.card(hold)["holdingText"].startswith("10 sh"), timeout=15000)
    card = w.cards.card(crash)
    # FAILING, not a green RUNNING, with the time it started; failing cards come first.
    assert card["statusText"].startswith("FAILING since ")
    assert "no idea what to do" in card["error"]
    assert w.cards.ids()[0] == crash
    assert w.dash_vm.countText == "3 algorithms \u00b7 1 failing"
    qtbot.wait(200)
    shot(w, size, "01-dashboard-failing")

    # Tapping the card opens Detail with the whole reason, scrollable and selectable.
    dash = w.pages["dashboard"]
    grid = item(dash, "cardGrid")
    # The first cell (failing first) is at the grid's top-left corner.
    p = grid.mapToScene(QPointF(grid.property("cellWidth") / 2,
                                grid.property("cellHeight") / 3)).toPoint()
    qtbot.mouseClick(dash, Qt.MouseButton.LeftButton, pos=p)
    qtbot.waitUntil(lambda: w.current_page() == "detail" and w.detail_vm.algo_id == crash,
                    timeout=5000)
    side = w.pages["detail"].side
    reason = item(side, "reasonText")
    assert reason.property("text") == card["error"]
    assert reason.property("readOnly") and reason.property("selectByMouse")
    qtbot.waitUntil(lambda: not w._detail_loading, timeout=15000)
    qtbot.wait(300)
    shot(w, size, "02-detail-failing")
    if w.docked:  # beside the cards (1920x1080): no Back, the dashboard is on screen
        assert not item(w.pages["detail"].title, "backButton").isVisible()
        assert w.pages["dashboard"].isVisible()
    else:
        click(qtbot, w.pages["detail"].title, "backButton")

    # An RSI(14) plugin declares no lines: no "SMA 14" on its chart.
    w.dash_vm.open(rsi)
    qtbot.waitUntil(lambda: not w._detail_loading and w.chart.count > 0, timeout=15000)
    assert w.chart.sma_windows() == ()

    # Detail of the holding algorithm: a double tap on Stop never sells.
    w.dash_vm.open(hold)
    qtbot.waitUntil(lambda: not w._detail_loading and w.chart.count > 0, timeout=15000)
    qtbot.wait(100)
    click(qtbot, side, "stopButton")
    qtbot.wait(150)
    stop_pos = item(side, "stopCancelButton")
    assert stop_pos.isVisible()
    click(qtbot, side, "stopCancelButton")  # the second tap lands on Cancel
    qtbot.wait(100)
    assert rig.engine.system.get_algorithm(hold)["status"] == "running"
    assert [t["type"] for t in rig.engine.system.transactions(hold)] == ["buy"]
    # Stop and sell is distinct and asks for the PIN, with shares and value.
    click(qtbot, side, "stopButton")
    qtbot.wait(100)
    shot(w, size, "03-detail-stop-choices")
    click(qtbot, side, "stopSellButton")
    assert w.current_page() == "lock" and w.lock_vm.mode == "confirm"
    assert "sell 10 MSFT, about $" in w.lock_vm.subtitle
    qtbot.wait(100)
    shot(w, size, "04-sell-pin")
    enter(w.lock_vm, PIN)
    qtbot.waitUntil(lambda: w.cards.card(hold)["status"] == "stopped"
                    and w.cards.card(hold)["holdingText"].startswith("cash"), timeout=15000)

    # Delete (PIN), then every Detail page is usable again: no "Deleting…" left over.
    w.dash_vm.open(rsi)
    click(qtbot, side, "deleteButton")
    enter(w.lock_vm, PIN)
    qtbot.waitUntil(lambda: w.current_page() == "dashboard" and w.cards.count() == 2,
                    timeout=15000)
    w.dash_vm.open(hold)
    assert w.detail_vm.busy == ""
    assert item(side, "resumeButton").property("active")
    assert item(side, "deleteButton").property("active")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_new_algorithm_seven_params_reachable_and_banner_goes(qtbot, window, rig, size,
                                                             monkeypatch) -> None:
    monkeypatch.setattr(dashboard, "MESSAGE_MS", 300)
    w = unlocked_window(qtbot, window)
    w.resize(*size)
    wait_account(qtbot, w)
    click(qtbot, w.pages["dashboard"], "newButton")
    qtbot.waitUntil(lambda: any(p["name"] == "seven_knobs" for p in w.new_vm.plugins),
                    timeout=15000)
    new = w.pages["new"]
    w.new_vm.choosePlugin("seven_knobs")
    qtbot.keyClicks(new, "zzzz")
    click(qtbot, new, "nextButton")
    qtbot.waitUntil(lambda: not w.new_vm.checking, timeout=15000)
    assert w.new_vm.step == "ticker" and "unknown to the broker" in w.new_vm.message
    qtbot.wait(100)
    shot(w, size, "05-new-unknown-ticker")
    for _ in range(4):
        w.new_vm.backspace()
    qtbot.keyClicks(new, "nvda")
    click(qtbot, new, "nextButton")
    qtbot.waitUntil(lambda: w.new_vm.step == "capital", timeout=15000)
    assert w.new_vm.tickerInfo.startswith("NVDA \u00b7")
    qtbot.wait(100)
    click(qtbot, new, "chip25")
    assert float(w.new_vm.capitalText) == pytest.approx(w.header_vm.free() * 0.25, abs=0.5)
    shot(w, size, "06-new-capital")
    click(qtbot, new, "nextButton")
    assert w.new_vm.step == "confirm" and len(w.new_vm.paramList) == 7
    qtbot.wait(200)
    shot(w, size, "07-new-confirm-7-params")
    # "Create and start" is on screen and tappable at this size, whatever the content.
    click(qtbot, new, "createButton")
    qtbot.waitUntil(lambda: w.current_page() == "dashboard" and w.cards.count() == 1,
                    timeout=15000)
    assert w.dash_vm.message.startswith("Algorithm created")
    qtbot.wait(50)
    shot(w, size, "08-dashboard-banner")
    # The banner sits in the action row (the grid does not move) and goes by itself.
    grid = item(w.pages["dashboard"], "cardGrid")
    assert grid.property("y") < 20
    qtbot.waitUntil(lambda: w.dash_vm.message == "", timeout=3000)

    # The chart opens on today's session, with a separator where the day changes.
    algo = w.cards.ids()[0]
    w.dash_vm.open(algo)
    qtbot.waitUntil(lambda: not w._detail_loading and w.chart.count > 400
                    and w.chart.draws > 0 and not w.chart._dirty, timeout=15000)
    starts = w.chart.session_starts()
    (x0, x1), _ = w.chart.getPlotItem().getViewBox().viewRange()
    n = w.chart.count
    assert len(starts) >= 2 and x0 >= starts[-1] - 61 and x1 >= n - 1
    assert w.chart.sma_windows() == (5, 30)  # declared by the plugin
    assert w.chart.separator_count() >= 1
    qtbot.wait(300)
    shot(w, size, "09-detail-chart")
    click(qtbot, w.pages["detail"].side, "range5D")
    qtbot.waitUntil(lambda: not w.chart._dirty, timeout=5000)
    qtbot.wait(200)
    (x0, _x1), _ = w.chart.getPlotItem().getViewBox().viewRange()
    assert x0 <= starts[max(0, len(starts) - 5)] + 1
    shot(w, size, "10-detail-chart-5d")
    w.settings_vm.refreshLog()
    w._open_settings()
    qtbot.wait(200)
    shot(w, size, "11-settings")
