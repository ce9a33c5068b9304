"""Issue 12, New algorithm checked early: the ticker step asks the broker as typing pauses and
shows the name and last price (or the refusal) before Next, off the GUI thread; a slow or
failing broker is said and never freezes the pad; the capital step says how many shares the
amount buys; plugins are listed by their display name with a scroll hint when they do not all
fit. Screenshots go to /tmp/autotrader-shots (AUTOTRADER_SHOTS) at 800x480 and 1920x1080."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QObject

from app.ui.newalgo import plugin_title
from app.ui.screenshot import save_png
from tests.ui.conftest import unlocked_window, wait_account
from tests.ui.qmlwalk import items, window_problems

SHOTS = Path(os.environ.get("AUTOTRADER_SHOTS", "/tmp/autotrader-shots"))
SIZES = [(800, 480), (1920, 1080)]

NAMED = '''
"""RSI dip buyer: declares the name people see."""


class Algorithm:
    display_name = "RSI dip buyer"

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return ("hold", 0)
'''


@pytest.fixture
def plugin_dir(plugin_dir: Path) -> Path:
    (plugin_dir / "rsi_dip.py").write_text(NAMED)
    for i in range(5):  # more plugins than fit at 800x480
        (plugin_dir / f"sma_cross_{i}.py").write_text(NAMED.replace(
            'display_name = "RSI dip buyer"', "period = 14"))
    return plugin_dir


def find(widget, name: str) -> QObject:
    found = widget.rootObject().findChild(QObject, name)
    assert found is not None, name
    return found


def open_new(qtbot, w, size) -> None:
    w.resize(*size)
    wait_account(qtbot, w)
    w.dash_vm.newAlgorithm()
    qtbot.waitUntil(lambda: len(w.new_vm.plugins) >= 8, timeout=15000)


def type_ticker(w, text: str) -> None:
    for ch in text:
        w.new_vm.key(ch)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_ticker_known_before_next_and_shares_it_buys(qtbot, window, rig, size) -> None:
    w = unlocked_window(qtbot, window)
    open_new(qtbot, w, size)
    new = w.pages["new"]
    w.new_vm.choosePlugin("buy_once")
    # Unknown: refused on the ticker step, no Next tapped.
    type_ticker(w, "ZZZZ")
    qtbot.waitUntil(lambda: "unknown to the broker" in w.new_vm.message, timeout=15000)
    assert w.new_vm.step == "ticker" and not w.new_vm.checking
    for _ in range(4):
        w.new_vm.backspace()
    assert w.new_vm.message == ""
    # Known: its name and last price on the ticker step, still before Next.
    type_ticker(w, "AMZN")
    qtbot.waitUntil(lambda: not w.new_vm.checking and "$" in w.new_vm.tickerInfo,
                    timeout=15000)
    assert w.new_vm.step == "ticker"
    price = rig.engine.market.latest_price("AMZN")
    assert w.new_vm.tickerInfo.startswith("AMZN \u00b7 ")
    assert w.new_vm.tickerInfo.endswith(f"${price:,.2f}")
    shown = find(new, "flowMessage")
    assert shown.isVisible() and shown.property("text") == w.new_vm.tickerInfo
    qtbot.wait(100)
    assert not window_problems(w)
    save_png(w, SHOTS / f"{size[0]}x{size[1]}-new-ticker-known.png")
    # Next goes on at once (already checked); the chips say how many shares that buys.
    w.new_vm.next()
    assert w.new_vm.step == "capital"
    assert w.new_vm.sharesText == f"AMZN last traded at ${price:,.2f}."
    w.new_vm.capitalShare(0.25)
    capital = float(w.new_vm.capitalText)
    assert capital == round(w.header_vm.free() * 0.25)  # whole dollars
    n = math.floor(capital / price)
    assert w.new_vm.sharesText == f"Buys {n:,} shares of AMZN at ${price:,.2f} (last price)."
    assert find(new, "sharesText").property("text") == w.new_vm.sharesText
    for _ in range(12):
        w.new_vm.backspace()
    type_ticker(w, "100")
    assert w.new_vm.sharesText == f"Not enough for one share of AMZN at ${price:,.2f}."
    w.new_vm.capitalShare(1.0)
    assert float(w.new_vm.capitalText) == math.floor(w.header_vm.free() * 100) / 100
    w.new_vm.next()
    assert w.new_vm.step == "confirm"
    assert find(new, "confirmShares").property("text") == w.new_vm.sharesText
    w.new_vm.back()
    qtbot.wait(100)
    assert not window_problems(w)
    save_png(w, SHOTS / f"{size[0]}x{size[1]}-new-capital-shares.png")


def test_slow_broker_is_said_and_the_pad_stays_usable(qtbot, window, rig) -> None:
    """The broker is made slow (a sleep before the simulated broker answers: no real network
    here). The check runs on the worker thread; after the timeout the step says so, keys
    still type, and Next asks again."""
    w = unlocked_window(qtbot, window)
    open_new(qtbot, w, (800, 480))
    w.new_vm._check_timeout.setInterval(400)
    real = rig.engine.broker.get_ticker
    threads: list[str] = []
    release = threading.Event()

    def slow(symbol):
        threads.append(threading.current_thread().name)
        release.wait(10)
        return real(symbol)

    rig.engine.broker.get_ticker = slow
    try:
        w.new_vm.choosePlugin("buy_once")
        type_ticker(w, "MSFT")
        w.new_vm.next()  # before the typing pause: asks now, goes on once known
        assert w.new_vm.checking and w.new_vm.step == "ticker"
        t0 = time.monotonic()
        qtbot.waitUntil(lambda: "has not answered about MSFT" in w.new_vm.message,
                        timeout=5000)
        assert time.monotonic() - t0 < 3
        assert not w.new_vm.checking and w.new_vm.step == "ticker"
        assert threads and threads[0] != threading.main_thread().name
        qtbot.wait(100)
        assert find(w.pages["new"], "flowMessage").property("text") == w.new_vm.message
        save_png(w, SHOTS / "800x480-new-ticker-slow-broker.png")
        # The pad answers while the broker does not: a key types at once.
        w.new_vm.backspace()
        w.new_vm.key("t")
        assert w.new_vm.ticker == "MSFT"
        release.set()
        w.new_vm.next()  # asks again; the broker answers now
        qtbot.waitUntil(lambda: w.new_vm.step == "capital", timeout=15000)
        assert w.new_vm.tickerInfo.startswith("MSFT \u00b7 ")
    finally:
        release.set()
        rig.engine.broker.get_ticker = real


def test_failing_broker_is_said_on_the_ticker_step(qtbot, window, rig) -> None:
    from app.broker.base import BrokerError

    w = unlocked_window(qtbot, window)
    open_new(qtbot, w, (800, 480))
    real = rig.engine.broker.get_ticker

    def down(symbol):
        raise BrokerError("connection refused")

    rig.engine.broker.get_ticker = down
    try:
        w.new_vm.choosePlugin("buy_once")
        type_ticker(w, "NVDA")
        w.new_vm.next()
        qtbot.waitUntil(lambda: not w.new_vm.checking, timeout=15000)
        assert w.new_vm.step == "ticker"
        assert w.new_vm.message == ("Cannot reach the broker to check NVDA now; try again "
                                    "in a moment.")
    finally:
        rig.engine.broker.get_ticker = real


def test_plugin_title_declared_or_readable() -> None:
    assert plugin_title({"name": "rsi_dip", "display_name": "RSI dip buyer"}) == "RSI dip buyer"
    assert plugin_title({"name": "sma_crossover"}) == "SMA crossover"
    assert plugin_title({"name": "buy_once", "display_name": "  "}) == "Buy once"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_plugins_by_display_name_with_a_scroll_hint(qtbot, window, rig, size) -> None:
    w = unlocked_window(qtbot, window)
    open_new(qtbot, w, size)
    titles = {p["name"]: p["title"] for p in w.new_vm.plugins}
    assert titles["rsi_dip"] == "RSI dip buyer"  # declared by the plugin
    assert titles["buy_once"] == "Buy once" and titles["sma_crossover"] == "SMA crossover"
    new = w.pages["new"]
    qtbot.wait(150)
    shown = {str(it.property("text")) for it in items(new.rootObject())
             if it.objectName() == "pluginTitle"}
    assert {"Bollinger reversion", "Buy and hold", "Buy once"} <= shown
    assert not any("_" in t for t in shown), shown
    lst = find(new, "pluginList")
    hint = find(new, "pluginScrollHint")
    overflows = lst.property("contentHeight") > lst.property("height") + 1
    if size == (800, 480):
        assert overflows
    assert hint.isVisible() == overflows
    save_png(w, SHOTS / f"{size[0]}x{size[1]}-new-plugins.png")
    if overflows:
        lst.setProperty("contentY", lst.property("contentHeight") - lst.property("height")
                        + lst.property("originY"))
        qtbot.waitUntil(lambda: not hint.isVisible(), timeout=2000)


def test_history_loaded_once_when_created(qtbot, window, rig) -> None:
    """The ticker step loads the history (for the last price); creating the algorithm a few
    minutes later only adds the minutes since, it does not load the window again."""
    w = unlocked_window(qtbot, window)
    open_new(qtbot, w, (800, 480))
    inserted: list[int] = []
    real = rig.engine.market.insert_rows

    def counting(rows):
        rows = list(rows)
        inserted.append(len(rows))
        return real(rows)

    rig.engine.market.insert_rows = counting
    try:
        w.new_vm.choosePlugin("buy_once")
        type_ticker(w, "TSLA")
        w.new_vm.next()
        qtbot.waitUntil(lambda: w.new_vm.step == "capital", timeout=15000)
        first = sum(inserted)
        assert first > 390
        rig.clock.advance(minutes=3)
        type_ticker(w, "1000")
        w.new_vm.next()
        w.new_vm.confirm()
        qtbot.waitUntil(lambda: w.cards.count() == 1, timeout=15000)
        assert sum(inserted) - first <= 5  # the three new minutes, not the window again
    finally:
        rig.engine.market.insert_rows = real


def test_typing_on_drops_the_check_of_a_known_prefix(qtbot, window, rig) -> None:
    """"AM" (made a known symbol here) is checked while the user pauses; typing on to "AMZN"
    drops that check, so AM's history is never loaded; AMZN's answer comes as usual."""
    w = unlocked_window(qtbot, window)
    open_new(qtbot, w, (800, 480))
    rig.engine.broker.symbols = set(rig.engine.broker.symbols) | {"AM"}
    real = rig.engine.broker.get_ticker
    asked: list[str] = []
    release = threading.Event()

    def slow(symbol):
        asked.append(symbol)
        if symbol == "AM":
            release.wait(10)
        return real(symbol)

    rig.engine.broker.get_ticker = slow
    try:
        w.new_vm.choosePlugin("buy_once")
        type_ticker(w, "AM")
        qtbot.waitUntil(lambda: asked == ["AM"], timeout=5000)  # the pause's check started
        type_ticker(w, "ZN")
        release.set()
        qtbot.waitUntil(lambda: "$" in w.new_vm.tickerInfo and not w.new_vm.checking,
                        timeout=15000)
        assert w.new_vm.tickerInfo.startswith("AMZN \u00b7 ")
        assert rig.engine.market.latest_ts("AM") is None  # never loaded
        assert rig.engine.market.latest_ts("AMZN") is not None
    finally:
        release.set()
        rig.engine.broker.get_ticker = real
