"""Layouts per screen size (issue 12, item 4) and the portfolio at a glance (item 2), in the
real window: 15 cards with huge figures and long names at every size (no number elided or
cut, no button under 48 px: ``qmlwalk``), Detail beside the cards at 1920x1080, portrait
(480x800) stacking, and the lock screen's read-only strip."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QObject, QPointF, Qt

from app.ui.screenshot import save_png
from tests.ui.conftest import SCREENSHOTS, enter, unlocked_window, wait_account
from tests.ui.qmlwalk import window_problems

SIZES = [(800, 480), (1024, 600), (1280, 800), (1920, 1080), (480, 800)]

LONG = ("opening_range_breakout_with_volume_filter", "mean_reversion_bollinger_bands",
        "sma_crossover", "rsi_dip")


def fake_views(n: int = 15) -> list[dict]:
    """Views as the engine gives them, with the widest figures a card must hold."""
    out = []
    for i in range(n):
        capital = 12_345_678.9 if i % 3 == 0 else 10_000.0
        out.append({
            "id": 100 + i, "name": f"algo {i}", "plugin": LONG[i % len(LONG)],
            "ticker": ("GOOGL", "BRK.B", "AAPL", "NVDA", "TSLA")[i % 5],
            "status": ("running", "error", "paused", "stopped")[i % 4],
            "error": "run() raised RuntimeError: something long enough to need two lines "
                     "and more (plugin.py:42)" if i % 4 in (1, 2) else "",
            "initial_capital": capital, "cash": capital * 0.1, "position": 98_765 if i % 2 else 0,
            "avg_cost": 1234.56, "last_price": 4321.09 if i % 2 else 1234.56,
            "value": None, "pnl": None, "pnl_pct": None, "params": {},
        })
    return out


def item(widget, name: str) -> QObject:
    found = widget.rootObject().findChild(QObject, name)
    assert found is not None, name
    return found


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_fifteen_cards_with_huge_figures_fit(qtbot, window, size) -> None:
    w = unlocked_window(qtbot, window)
    w.resize(*size)
    # The engine's own reads (it has no algorithms; one follows any algorithmsChanged, e.g.
    # when the plugin folder's probe ends) would replace the fake cards: stop the worker,
    # deliver what it already sent (a queued read outlives a disconnect), then cut it off.
    w.worker_thread.stop()
    qtbot.wait(50)
    w.worker.views.disconnect()
    w.cards.set_views(fake_views())
    assert w.cards.count() == 15
    qtbot.wait(200)
    card = w.cards.card(103)
    assert card["pnlText"].startswith("+$") and len(card["pnlText"]) > 12  # a huge number
    problems = window_problems(w)
    save_png(w, SCREENSHOTS / f"{size[0]}x{size[1]}-13-dashboard-15-huge.png")
    assert not problems, "\n".join(problems)
    # The plugin's display name is never cut next to its status pill.
    dash = w.pages["dashboard"]
    grid = item(dash, "cardGrid")
    names = [it for it in _walk(grid) if it.objectName() == "cardPlugin" and it.isVisible()]
    assert names and not [n.property("text") for n in names if n.property("truncated")]
    # The count says how many there are and that the list scrolls.
    msg = item(dash, "dashMessage").property("text")
    assert msg.startswith("15 algorithms \u00b7 4 failing \u00b7 4 paused")
    assert "more below" in msg


def _walk(it):
    yield it
    for c in it.childItems():
        yield from _walk(c)


def test_detail_beside_the_cards_at_1920(qtbot, window, rig) -> None:
    a = rig.engine.create_algorithm("sma_crossover", "AAPL", 5000.0)
    b = rig.engine.create_algorithm("buy_once", "MSFT", 5000.0)
    w = unlocked_window(qtbot, window)
    w.resize(1920, 1080)
    w.schedule_refresh()
    # The first card's chart opens by itself beside the cards; no Back button.
    qtbot.waitUntil(lambda: w.docked and w.detail_vm.algo_id == a and not w._detail_loading,
                    timeout=15000)
    assert w.pages["dashboard"].isVisible() and w.pages["detail"].isVisible()
    assert not item(w.pages["detail"].title, "backButton").isVisible()
    assert w.dash_vm.selectedId == a
    dash = w.pages["dashboard"]
    assert dash.width() < 1920 / 2 and w.pages["detail"].width() > 1920 / 2
    # A tap on the second card (right column of the first row) shows its chart there.
    grid = item(dash, "cardGrid")
    p = grid.mapToScene(QPointF(grid.property("cellWidth") * 1.5,
                                grid.property("cellHeight") / 3)).toPoint()
    qtbot.mouseClick(dash, Qt.MouseButton.LeftButton, pos=p)
    qtbot.waitUntil(lambda: w.detail_vm.algo_id == b and not w._detail_loading, timeout=5000)
    assert w.current_page() == "detail" and dash.isVisible() and w.dash_vm.selectedId == b
    # Back to a small screen: Detail is a page of its own again, with its Back button.
    w.resize(800, 480)
    qtbot.waitUntil(lambda: not w.docked, timeout=2000)
    w.show_page("dashboard")
    qtbot.wait(50)
    assert not w.pages["detail"].isVisible() and w.dash_vm.selectedId == -1
    w.open_detail(b)
    qtbot.wait(50)
    assert item(w.pages["detail"].title, "backButton").isVisible()


def test_portrait_stacks_detail_and_keys(qtbot, window, rig) -> None:
    a = rig.engine.create_algorithm("sma_crossover", "AAPL", 5000.0)
    w = unlocked_window(qtbot, window)
    w.resize(480, 800)
    w.schedule_refresh()
    qtbot.waitUntil(lambda: w.cards.count() == 1, timeout=15000)
    w.open_detail(a)
    qtbot.waitUntil(lambda: not w._detail_loading, timeout=15000)
    qtbot.wait(100)
    page = w.pages["detail"]
    # The panel under the chart, full width; the chart above it.
    assert page.side.width() == page.width()
    assert page.side.y() > page.chart.y() + page.chart.height() - 2
    assert page.chart.width() == page.width()
    w.show_page("dashboard")
    w.open_new()
    qtbot.waitUntil(lambda: bool(w.new_vm.plugins), timeout=15000)
    w.new_vm.choosePlugin("sma_crossover")
    qtbot.wait(100)
    problems = window_problems(w)
    assert not problems, "\n".join(problems)


def test_lock_screen_shows_the_portfolio_read_only(qtbot, window, rig) -> None:
    rig.engine.create_algorithm("crashes", "AMZN", 1000.0)
    rig.engine.create_algorithm("buy_once", "MSFT", 5000.0)
    rig.engine.start()
    from tests.ui.test_trader_grade import tick

    tick(rig, 1)
    w = unlocked_window(qtbot, window)
    wait_account(qtbot, w)
    w.schedule_refresh()
    qtbot.waitUntil(lambda: w.header_vm.countText == "2 algorithms \u00b7 1 failing"
                    and w.header_vm.todayText != "\u2014", timeout=15000)
    w.lock()
    qtbot.wait(100)
    lock = w.pages["lock"]
    strip = {n: item(lock, n).property("text") for n in
             ("stripValue", "stripToday", "stripCount", "stripMarket", "stripFeed")}
    assert strip["stripValue"] == "Account " + w.header_vm.valueText
    assert strip["stripToday"] == "Today " + w.header_vm.todayText
    assert strip["stripCount"] == "2 algorithms \u00b7 1 failing"
    assert strip["stripMarket"].startswith("NYSE \u00b7 10:3") and "OPEN" in strip["stripMarket"]
    assert strip["stripFeed"] == "simulated"
    assert not w.header.isVisible()  # the strip, not the header, on the lock screen
    # Read-only: the strip has no buttons; a wrong PIN still keeps everything locked.
    enter(w.lock_vm, "000000")
    assert w.current_page() == "lock"


def test_settings_show_the_engine_guards(qtbot, window, rig) -> None:
    """The risk guards in force, as the engine holds them, in Settings (changed by a tap:
    tests/ui/test_settings_guards.py)."""
    w = unlocked_window(qtbot, window)
    rows = {r["name"]: r["shown"] for r in w.settings_vm.guard_edit.rows}
    lim = rig.engine.guards.limits
    assert rows["algo_max_daily_loss_pct"] == f"{lim.algo_max_daily_loss_pct:g} %"
    assert rows["algo_max_drawdown_pct"] == f"{lim.algo_max_drawdown_pct:g} %"
    assert rows["algo_max_orders_per_day"] == str(lim.algo_max_orders_per_day)
    assert rows["on_guard_stop"] == "keep the shares"
    assert "[risk]" in w.settings_vm.guardsHint
