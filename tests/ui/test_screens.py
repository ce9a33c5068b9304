"""Every screen at 800x480 (the Pi's 7" display) and 1920x1080, saved as PNGs in screenshots/.

Each picture is also checked for being a real rendering (many colours, the page's own
pixels), and the chart for really drawing its price line.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from PySide6.QtGui import QColor, QImage

from app.ui.chart import PRICE_PEN
from app.ui.screenshot import save_png
from tests.ui.conftest import PIN, SCREENSHOTS, enter, set_up_pin

SIZES = [(800, 480), (1920, 1080)]


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


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_screen(qtbot, window, rig, size) -> None:
    w = window
    from app.logging_setup import setup_logging

    setup_logging("INFO", rig.settings.log_path, console=False)  # for the settings' log view
    logging.getLogger("app").info("screenshot run at %dx%d", *size)
    w.resize(*size)
    tag = f"{size[0]}x{size[1]}"

    def shot(name: str) -> QImage:
        qtbot.wait(120)  # let the scene graph render the latest state
        path = save_png(w, SCREENSHOTS / f"{tag}-{name}.png")
        img = QImage(str(path))
        assert (img.width(), img.height()) == size
        assert colours(img) > 8, name
        return img

    shot("01-lock-setup")
    set_up_pin(w)
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
    shot("02-dashboard")

    w.dash_vm.newAlgorithm()
    qtbot.waitUntil(lambda: bool(w.new_vm.plugins), timeout=15000)
    shot("03-new-1-plugin")
    w.new_vm.choosePlugin("sma_crossover")
    for ch in "AMZN":
        w.new_vm.key(ch)
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

    w.dash_vm.open(ids[3])
    qtbot.waitUntil(lambda: not w._detail_loading and w.chart.count > 0, timeout=15000)
    qtbot.waitUntil(lambda: w.chart.draws > 0, timeout=15000)
    img = shot("07-detail")
    chart_img = w.chart.grab().toImage()
    assert count_colour(chart_img, PRICE_PEN["color"]) > 50  # the price line is drawn

    w.dash_vm.open(ids[0])
    qtbot.waitUntil(lambda: not w._detail_loading and w.chart.get_sma_count() == 2, timeout=15000)
    shot("08-detail-sma")
    w.detail_vm.remove()
    shot("09-confirm-delete-pin")
    w.lock_vm.cancel()

    w.dash_vm.settings()
    assert "screenshot run at" in w.settings_vm.logText
    shot("10-settings")
    w.lock()
    enter(w.lock_vm, "0000")
    shot("11-lock-wrong-pin")
    assert img is not None and PIN
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_autotrader", False)]:
        root.removeHandler(h)
        h.close()
