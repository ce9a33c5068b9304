"""'Try it first': the confirm step backtests the choice on the last 5 days, off the GUI
thread, on the real demo market DB, and shows the same figures as ``backtest_recent``."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread

from app.backtest.api import backtest_recent
from app.ui import format as fmt
from app.ui.newalgo import backtest_figures
from tests.ui.conftest import unlocked_window
from tests.ui.test_algorithms import create_via_ui, wait_account


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
    threads: list[QThread] = []
    # Direct connection: runs on the emitting (worker) thread, so it records that thread.
    w.worker.backtestDone.connect(lambda *_: threads.append(QThread.currentThread()),
                                  Qt.ConnectionType.DirectConnection)
    button = w.pages["new"].rootObject().findChild(QObject, "backtestButton")
    assert button is not None and button.property("height") >= 48
    assert button.property("text") == "Backtest last 5 days"
    with qtbot.waitSignal(w.worker.backtestDone, timeout=30_000):
        button.clicked.emit()  # what a tap does
        # The GUI thread came straight back: it shows "Running…" while the worker runs.
        assert w.new_vm.backtestState == "running"
        assert w.new_vm.backtestButtonText == "Running\u2026"
    qtbot.waitUntil(lambda: w.new_vm.backtestState == "done", timeout=15_000)
    assert threads and threads[0] is not QCoreApplication.instance().thread()
    assert threads[0] is w.worker_thread

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
    # Well-formed but unknown to the broker: no history, a clear message, input kept.
    create_via_ui(qtbot, w, "sma_crossover", "ZZZZ", "1000")
    w.new_vm.backtest()
    qtbot.waitUntil(lambda: w.new_vm.backtestState == "failed", timeout=15_000)
    assert "ZZZZ" in w.new_vm.backtestMessage and "unknown" in w.new_vm.backtestMessage
    assert w.new_vm.backtestFigures == [] and w.new_vm.step == "confirm"
    assert rig.engine.market.latest_ts("ZZZZ") is None
    # Back to the ticker: the message belongs to the old choice and goes.
    w.new_vm.back()
    assert w.new_vm.backtestState == "" and w.new_vm.backtestMessage == ""
    w.new_vm.back()
    assert w.new_vm.step == "ticker"
    for _ in range(4):
        w.new_vm.backspace()
    for ch in "MSFT":
        w.new_vm.key(ch)
    w.new_vm.next()
    w.new_vm.next()
    assert w.new_vm.step == "confirm"
    w.new_vm.backtest()
    qtbot.waitUntil(lambda: w.new_vm.backtestState == "done", timeout=30_000)
    assert len(w.new_vm.backtestFigures) == 5
    w.new_vm.editParam("sma_short")
    w.new_vm.key("1")
    w.new_vm.next()  # a changed parameter: the figures are stale
    assert w.new_vm.backtestState == "" and w.new_vm.backtestFigures == []
