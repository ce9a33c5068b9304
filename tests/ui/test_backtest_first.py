"""'Try it first': the confirm step backtests the choice on the last 5 days, off the GUI
thread, on the real demo market DB, and shows the same figures as ``backtest_recent``."""

from __future__ import annotations

import os
import time

from PySide6.QtCore import QObject, Qt

from app.backtest.api import backtest_recent
from app.ui import format as fmt
from app.ui.newalgo import backtest_figures
from tests.ui.conftest import unlocked_window, wait_account
from tests.ui.test_algorithms import create_via_ui
from tests.ui.test_touch import centre


def figure(w, label: str) -> str:
    return next(f["value"] for f in w.new_vm.backtestFigures if f["label"].startswith(label))


def test_backtest_on_confirm_step_matches_direct_call(qtbot, window, rig) -> None:
    w = unlocked_window(qtbot, window)
    wait_account(qtbot, w)
    create_via_ui(qtbot, w, "sma_crossover", "AAPL", "2500")
    assert w.new_vm.step == "confirm"
    # A shorter SMA so the few sessions give some trades to count.
    w.new_vm.editParam("sma_short")
    w.new_vm.backspace()
    w.new_vm.backspace()
    w.new_vm.key("5")
    w.new_vm.next()
    button = w.pages["new"].rootObject().findChild(QObject, "backtestButton")
    assert button is not None and button.property("height") >= 48
    assert button.property("text") == "Backtest last 5 days"
    with qtbot.waitSignal(w.backtest_job.done, timeout=60_000):
        button.clicked.emit()  # what a tap does
        # The GUI thread came straight back; the backtest runs in a process of its own.
        assert w.new_vm.backtestState == "running"
        assert w.new_vm.backtestButtonText == "Cancel backtest"
        pid = w.backtest_job.pid
        assert pid is not None and pid != os.getpid()
    qtbot.waitUntil(lambda: w.new_vm.backtestState == "done", timeout=15_000)
    assert not w.backtest_job.running

    result, report = backtest_recent(rig.settings, "sma_crossover", "AAPL", days=5,
                                     capital=2500.0, params={"sma_short": 5, "sma_long": 50})
    m = report["metrics"]
    shown = w.new_vm.backtest_report["metrics"]
    assert shown["total_return"] == m["total_return"] == result.metrics.total_return
    assert shown["trades"] == m["trades"] == result.metrics.trades
    assert m["trades"] > 0 and 1 <= m["sessions"] <= 5
    assert figure(w, "Total return") == fmt.signed_pct(m["total_return"] * 100)
    assert figure(w, "Trades") == str(m["trades"])
    assert figure(w, "Buy and hold") == fmt.signed_pct(m["buy_and_hold_return"] * 100)
    assert figure(w, "Max drawdown") == fmt.signed_pct(m["max_drawdown"] * 100)
    assert w.new_vm.backtestFigures == backtest_figures(report)
    assert f"last {m['sessions']} session" in w.new_vm.backtestMessage
    # The user can still go ahead; nothing was created by the backtest.
    assert rig.engine.system.list_algorithms() == []
    w.new_vm.confirm()
    qtbot.waitUntil(lambda: w.cards.count() == 1, timeout=15_000)


def test_backtest_failure_is_clear_and_figures_drop_on_change(qtbot, window, rig) -> None:
    w = unlocked_window(qtbot, window)
    wait_account(qtbot, w)
    create_via_ui(qtbot, w, "sma_crossover", "MSFT", "1000")
    assert w.new_vm.step == "confirm"
    # A parameter the plugin cannot run with: the backtest says so, the input is kept.
    w.new_vm.editParam("sma_short")
    w.new_vm.key("0")
    w.new_vm.key("0")
    w.new_vm.key("0")
    w.new_vm.next()
    w.new_vm.backtest()
    qtbot.waitUntil(lambda: w.new_vm.backtestState in ("failed", "done"), timeout=60_000)
    w.new_vm.editParam("sma_short")
    for _ in range(5):
        w.new_vm.backspace()
    w.new_vm.key("5")
    w.new_vm.next()
    assert w.new_vm.step == "confirm"
    w.new_vm.backtest()
    qtbot.waitUntil(lambda: w.new_vm.backtestState == "done", timeout=60_000)
    assert len(w.new_vm.backtestFigures) == 5
    w.new_vm.editParam("sma_short")
    w.new_vm.key("1")
    w.new_vm.next()  # a changed parameter: the figures are stale
    assert w.new_vm.backtestState == "" and w.new_vm.backtestFigures == []


def test_backtest_cancel_kills_its_process_and_close_never_waits(qtbot, window, rig) -> None:
    w = unlocked_window(qtbot, window)
    wait_account(qtbot, w)
    create_via_ui(qtbot, w, "sma_crossover", "AAPL", "2500")
    new = w.pages["new"]
    button = new.rootObject().findChild(QObject, "backtestButton")
    qtbot.mouseClick(new, Qt.MouseButton.LeftButton, pos=centre(new, "backtestButton"))
    assert w.new_vm.backtestState == "running" and button.property("text") == "Cancel backtest"
    pid = w.backtest_job.pid
    assert pid is not None
    qtbot.wait(50)
    # The same button cancels: the process is killed, the flow stays on the confirm step.
    qtbot.mouseClick(new, Qt.MouseButton.LeftButton, pos=centre(new, "backtestButton"))
    assert w.new_vm.backtestState == "" and w.new_vm.backtestMessage == "Backtest cancelled."
    assert not w.backtest_job.running and w.new_vm.step == "confirm"
    qtbot.waitUntil(lambda: not _alive(pid), timeout=5000)
    # A new one, then the window closes while it runs: shutdown kills it without waiting.
    w.new_vm.backtest()
    pid = w.backtest_job.pid
    t0 = time.monotonic()
    w.backtest_job.shutdown()
    assert time.monotonic() - t0 < 1.0
    qtbot.waitUntil(lambda: not _alive(pid), timeout=5000)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
