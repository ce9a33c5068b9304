"""Every screen at 800x480 (the Pi's 7" display), 1024x600, 1280x800, 1920x1080 (Detail
beside the cards) and 480x800 portrait (the Touch Display mounted upright), saved as PNGs in
screenshots/ for a person to look at.

Each size also walks the QML tree of the screen in use: no number (price, P&L, value, count)
is elided, wider than its box or cut by the screen's edge, and no button is smaller than
48x48 px (``tests/ui/qmlwalk.py``). The chart is checked for really drawing its price line.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
from PySide6.QtGui import QColor, QImage

from app.ui.chart import PRICE_PEN
from app.ui.screenshot import save_png
from db import performance as perf
from tests.ui.conftest import PIN, SCREENSHOTS, enter, set_up_pin
from tests.ui.qmlwalk import window_problems

SIZES = [(800, 480), (1024, 600), (1280, 800), (1920, 1080), (480, 800)]


def size_id(s: tuple[int, int]) -> str:
    return f"{s[0]}x{s[1]}"


def colours(img: QImage, step: int = 7) -> int:
    seen = set()
    for y in range(0, img.height(), step):
        for x in range(0, img.width(), step):
            seen.add(img.pixel(x, y))
    return len(seen)


def count_colour(img: QImage, colour: str, tol: int = 40) -> int:
    c = QColor(colour)
    n = 0
    for y in range(0, img.height(), 2):
        for x in range(0, img.width(), 2):
            p = QColor(img.pixel(x, y))
            if (abs(p.red() - c.red()) + abs(p.green() - c.green())
                    + abs(p.blue() - c.blue())) < tol:
                n += 1
    return n


def seed_performance(rig, sessions: int = 30) -> list[str]:
    """Daily snapshots of the account and two algorithms for the sessions before the rig's
    day, and a SPY close on each (the reference), as the engine and ``data fetch`` store
    them."""
    cal = rig.engine.calendar
    days = []
    d = date(2024, 3, 4)
    while len(days) < sessions:
        if cal.session_on(d) is not None:
            days.append(d)
        d -= timedelta(days=1)
    days.reverse()
    rows, bars = [], []
    for i, day in enumerate(days):
        iso = day.isoformat()
        a1 = 20_000 * (1 + 0.004 * i - 0.01 * (i % 5 == 3))
        a2 = 10_000 * (1 - 0.002 * i + 0.006 * (i % 4 == 1))
        rows += [
            {"day": iso, "algo_id": 901, "name": "sma_crossover", "ticker": "AAPL",
             "value": a1, "pnl": a1 - 20_000, "status": "running", "taken": "close"},
            {"day": iso, "algo_id": 902, "name": "rsi_dip", "ticker": "TSLA",
             "value": a2, "pnl": a2 - 10_000, "status": "running", "taken": "close"},
            {"day": iso, "algo_id": perf.ACCOUNT, "name": "Account", "ticker": "",
             "value": 70_000 + a1 + a2, "pnl": a1 + a2 - 30_000, "status": "demo",
             "taken": "close"},
        ]
        close = cal.session_on(day).close
        px = 500 * (1 + 0.003 * i)
        bars.append(("SPY", int(close.timestamp()) - 60, px, px, px, px, 1000))
    perf.record_day(rig.engine.system.conn, rows)
    rig.engine.market.insert_rows(bars)
    return [d.isoformat() for d in days]


@pytest.mark.parametrize("size", SIZES, ids=size_id)
def test_every_screen(qtbot, window, rig, size) -> None:
    w = window
    from app.logging_setup import setup_logging

    setup_logging("INFO", rig.settings.log_path, console=False)  # for the settings' log view
    logging.getLogger("app").info("screenshot run at %dx%d", *size)
    w.resize(*size)
    tag = size_id(size)
    found: list[str] = []

    def shot(name: str) -> QImage:
        qtbot.wait(150)  # let the scene graph render the latest state
        path = save_png(w, SCREENSHOTS / f"{tag}-{name}.png")
        img = QImage(str(path))
        assert (img.width(), img.height()) == size
        assert colours(img) > 8, name
        found.extend(f"{name}: {p}" for p in window_problems(w))
        return img

    shot("01-lock-setup")
    set_up_pin(w)
    seed_performance(rig)
    ids = [rig.engine.create_algorithm("sma_crossover", t, c)
           for t, c in (("AAPL", 20_000.0), ("MSFT", 15_000.0), ("NVDA", 10_000.0))]
    ids.append(rig.engine.create_algorithm("buy_once", "TSLA", 5_000.0))
    ids.append(rig.engine.create_algorithm("crashes", "AMZN", 1_000.0))
    rig.engine.start()
    minute = rig.clock.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    rig.clock.set(minute + timedelta(seconds=2))
    rig.in_thread(lambda: rig.engine.run_tick(minute))
    rig.engine.stop_algorithm(ids[2])
    w.schedule_refresh()
    qtbot.waitUntil(lambda: w.cards.count() == 5 and w.cards.card(ids[3])["positionText"]
                    .startswith("10 sh") and bool(w.cards.card(ids[4])["error"]), timeout=15000)
    assert "ValueError: no idea what to do" in w.cards.card(ids[4])["error"]
    qtbot.waitUntil(lambda: w.header_vm.free() is not None, timeout=15000)
    # Today's P&L in the header: the algorithms' P&L since the last snapshot.
    qtbot.waitUntil(lambda: w.header_vm.todayText != "\u2014", timeout=15000)
    if w.docked:  # the first card's chart beside the cards
        qtbot.waitUntil(lambda: w.detail_vm.algo_id == w.cards.ids()[0]
                        and not w._detail_loading, timeout=15000)
    shot("02-dashboard")

    w.dash_vm.newAlgorithm()
    qtbot.waitUntil(lambda: bool(w.new_vm.plugins), timeout=15000)
    shot("03-new-1-plugin")
    w.new_vm.choosePlugin("sma_crossover")
    for ch in "AMZN":
        w.new_vm.key(ch)
    # The broker's answer shows on this step ("AMZN · Amazon.com · $184.38"), once typing pauses.
    qtbot.waitUntil(lambda: "Amazon.com" in w.new_vm.tickerInfo, timeout=15000)
    shot("04-new-2-ticker")
    w.new_vm.next()
    qtbot.waitUntil(lambda: w.new_vm.step == "capital", timeout=15000)
    for ch in "999999":
        w.new_vm.key(ch)
    w.new_vm.next()
    assert "is free" in w.new_vm.message
    shot("05-new-3-capital-too-much")
    for _ in range(6):
        w.new_vm.backspace()
    for ch in "2500":
        w.new_vm.key(ch)
    w.new_vm.next()
    shot("06-new-4-confirm")
    # The backtest runs in its own process: "Cancel backtest" while it runs.
    w.new_vm.backtest()
    assert w.new_vm.backtestButtonText == "Cancel backtest"
    shot("06a-new-4-backtest-running")
    assert w.new_vm.backtestState == "running"
    qtbot.waitUntil(lambda: w.new_vm.backtestState == "done", timeout=60_000)
    assert len(w.new_vm.backtestFigures) == 5
    shot("06a-new-4-backtest-figures")
    w.new_vm.editParam("sma_short")
    w.new_vm.backspace()
    w.new_vm.key("5")
    shot("06b-new-4-parameter")
    w.new_vm.next()
    w.new_vm.back()
    w.new_vm.back()
    for _ in range(4):
        w.new_vm.backspace()
    for ch in "ZZZZ":
        w.new_vm.key(ch)
    w.new_vm.next()
    qtbot.waitUntil(lambda: not w.new_vm.checking, timeout=15000)
    shot("06c-new-2-unknown-ticker")
    w.new_vm.cancel()
    assert w.new_vm.leaveAsked
    shot("06d-new-leave-asked")
    w.new_vm.cancel()

    w.dash_vm.open(ids[3])
    qtbot.waitUntil(lambda: not w._detail_loading and w.chart.count > 0, timeout=15000)
    qtbot.waitUntil(lambda: w.chart.draws > 0, timeout=15000)
    img = shot("07-detail")
    chart_img = w.chart.grab().toImage()
    assert count_colour(chart_img, PRICE_PEN["color"]) > 50  # the price line is drawn
    assert img is not None

    # Candles, and the crosshair on the newest bar: its time and OHLC in the legend row.
    w.detail_vm.toggleCandles()
    assert w.chart.candles
    qtbot.waitUntil(lambda: not w.chart._dirty, timeout=5000)
    w.chart.crosshair_at(w.chart.count - 3)
    assert "O " in w.chart.legend_text() and "Vol " in w.chart.legend_text()
    shot("07b-detail-candles-crosshair")
    w.chart._hide_crosshair()
    w.detail_vm.toggleCandles()
    # A day of trades: the list shows several rows at every size (portrait showed one).
    txs = [{"id": 9000 + i, "type": "buy" if i % 2 == 0 else "sell", "shares": 10 + i,
            "price": 250.0 + i, "timestamp": f"2024-03-05T15:{10 + 3 * i:02d}:00Z"}
           for i in range(8)]
    w.detail_vm.transactions.set_transactions(txs)
    qtbot.wait(50)
    shot("07c-detail-transactions")
    side = w.pages["detail"].side.rootObject()
    side.setProperty("askStop", True)
    qtbot.wait(50)
    shot("07d-detail-stop-asked")
    side.setProperty("askStop", False)
    w.header_vm.set_replay("2024-03-05")
    qtbot.wait(50)
    shot("07e-header-replay")
    w.header_vm.set_replay("")

    w.dash_vm.open(ids[0])
    qtbot.waitUntil(lambda: not w._detail_loading and w.chart.get_sma_count() == 2, timeout=15000)
    shot("08-detail-sma")
    w.detail_vm.remove()
    shot("09-confirm-delete-pin")
    w.lock_vm.cancel()

    w.dash_vm.settings()
    assert "screenshot run at" in w.settings_vm.logText
    shot("10-settings")

    w.dash_vm.performance()
    qtbot.waitUntil(lambda: len(w.perf_vm.curves) == 4, timeout=15000)
    w.perf_vm.setRange("All")
    qtbot.wait(100)
    shot("12-performance")
    w.perf_vm.back()

    w.lock()
    enter(w.lock_vm, "0000")
    assert w.header_vm.countText == "5 algorithms \u00b7 1 failing"
    shot("11-lock-wrong-pin")
    assert PIN
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_autotrader", False)]:
        root.removeHandler(h)
        h.close()
    assert not found, "\n".join(found)
