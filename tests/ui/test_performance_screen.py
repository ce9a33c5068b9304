"""Issue 13's Performance screen: curves from the engine's daily snapshots (a real system DB),
each in % of its value at the range's start, the reference's buy and hold, 1W / 1M / 3M / All,
and what the page says when something is missing. Plus today's P&L for the header, from the
same snapshots."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.ui.performance import PerformanceViewModel, build_curves, max_drawdown, range_start
from app.ui.portfolio import DayBase, day_base, today_figures
from db import performance as perf
from db.system import SystemStore


def weekdays(end: date, n: int) -> list[str]:
    out, d = [], end
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d.isoformat())
        d -= timedelta(days=1)
    return sorted(out)


@pytest.fixture
def system(tmp_path):
    s = SystemStore(tmp_path / "system.db")
    yield s
    s.close()


def seed(system, days: list[str]) -> None:
    rows = []
    for i, d in enumerate(days):
        rows.append({"day": d, "algo_id": perf.ACCOUNT, "name": "Account", "ticker": "",
                     "value": 100_000 + 100 * i, "pnl": 100 * i, "status": "demo", "taken": "close"})
        rows.append({"day": d, "algo_id": 7, "name": "sma_crossover", "ticker": "AAPL",
                     "value": 10_000 - 50 * i, "pnl": -50 * i, "status": "running", "taken": "close"})
    perf.record_day(system.conn, rows)


def test_curves_in_percent_of_the_range_start(system) -> None:
    days = weekdays(date(2024, 3, 4), 60)
    seed(system, days)
    rows = perf.all_since(system.conn, "")
    bench = [(d, 500.0 + i) for i, d in enumerate(days)]
    today = date(2024, 3, 5)
    since = range_start(today, "1M")
    curves = build_curves(rows, bench, "SPY", since)
    assert [c.key for c in curves] == ["account", "bench", "algo:7"]
    acct = curves[0]
    shown = [d for d in days if d >= since]
    assert list(acct.days) == shown
    # Base: the newest snapshot before the range (not the first one inside it).
    before = days[days.index(shown[0]) - 1]
    base = 100_000 + 100 * days.index(before)
    assert acct.base == base
    assert acct.change_pct == pytest.approx((100_000 + 100 * 59) / base * 100 - 100)
    assert curves[2].change_pct < 0 and curves[1].name == "SPY buy and hold"
    # All: from the first day, its own first value as the base.
    allc = build_curves(rows, bench, "SPY", range_start(today, "All"))
    assert len(allc[0].days) == 60 and allc[0].base == 100_000
    assert max_drawdown([100, 120, 90, 130]) == pytest.approx(25.0)


def test_view_model_ranges_and_messages(qtbot, system) -> None:
    vm = PerformanceViewModel(today=lambda: date(2024, 3, 5))
    vm.open()
    assert "Reading" in vm.message
    vm.set_data([], [], "SPY")
    assert "No daily snapshots yet" in vm.message and vm.model.rowCount() == 0
    days = weekdays(date(2024, 3, 4), 60)
    seed(system, days)
    vm.set_data(perf.all_since(system.conn, ""), [], "SPY")
    assert "No SPY history" in vm.message  # no reference bars stored
    assert vm.range == "1M" and [r["key"] for r in vm.model.rows()] == ["account", "algo:7"]
    n_month = len(vm.curves[0].days)
    vm.setRange("1W")
    assert len(vm.curves[0].days) < n_month <= 23
    vm.setRange("All")
    assert len(vm.curves[0].days) == 60
    row = vm.model.rows()[1]
    assert row["name"] == "AAPL \u00b7 sma_crossover" and row["changeText"].startswith("\u2212")
    assert row["valueText"] == f"${10_000 - 50 * 59:,}"


def test_the_reference_is_configured_and_chosen_on_the_screen(qtbot) -> None:
    """ui.performance_reference is the first; the screen's button goes through the others,
    each read again with the snapshots (the worker gets the ticker)."""
    from app.config import load_settings

    assert load_settings(overrides={"ui.performance_reference": "QQQ"}).ui \
        .performance_reference == "QQQ"
    vm = PerformanceViewModel(today=lambda: date(2024, 3, 5), reference="QQQ")
    asked: list[str] = []
    vm.reloadRequested.connect(asked.append)
    vm.open()
    assert asked == ["QQQ"] and vm.referenceText == "vs QQQ"
    vm.nextReference()
    assert asked[-1] == "SPY" and vm.referenceText == "vs SPY"
    vm.set_data([], [], "SPY")
    for _ in range(3):
        vm.nextReference()
    assert asked[-3:] == ["DIA", "IWM", "QQQ"]


def test_today_pnl_counts_from_the_last_close(system) -> None:
    perf.record_day(system.conn, [
        {"day": "2024-03-01", "algo_id": 1, "value": 10_100, "pnl": 100, "taken": "close"},
        {"day": "2024-03-04", "algo_id": 1, "value": 10_250, "pnl": 250, "taken": "close"},
        {"day": "2024-03-05", "algo_id": 1, "value": 10_900, "pnl": 900, "taken": "close"},  # today's own row
        {"day": "2024-03-04", "algo_id": 0, "value": 99_000, "pnl": 0, "taken": "close"},
    ])
    base = DayBase().get(system.conn, date(2024, 3, 5))
    assert base == {1: 250.0}
    assert day_base(perf.all_since(system.conn, ""), "2024-03-04") == {1: 100.0}
    views = [{"id": 1, "status": "running", "pnl": 300.0, "value": 10_300.0},
             {"id": 2, "status": "running", "pnl": -20.0, "value": 4_980.0},  # new today
             {"id": 3, "status": "deleted", "pnl": 999.0, "value": 1.0}]
    pnl, start = today_figures(views, base)
    assert pnl == pytest.approx(50.0 - 20.0)
    assert start == pytest.approx(10_250.0 + 5_000.0)


def test_an_empty_chart_shows_no_axes(qtbot, system) -> None:
    """No snapshots yet: the page says why, and the chart draws no axes counting an empty
    range's +0.1 ... +0.9 % (seen under Xvfb); they come back with the first curve."""
    from app.ui.performance_page import PerformanceChart

    chart = PerformanceChart()
    qtbot.addWidget(chart)
    item = chart.getPlotItem()
    chart.set_curves([])
    assert not item.getAxis("right").isVisible() and not item.getAxis("bottom").isVisible()
    assert not chart._zero.isVisible()
    seed(system, weekdays(date(2024, 3, 4), 10))
    curves = build_curves(perf.all_since(system.conn, ""), [], "SPY", "")
    chart.set_curves(curves)
    assert item.getAxis("right").isVisible() and item.getAxis("bottom").isVisible()
    assert chart.shown_keys() == ["account", "algo:7"]


@pytest.mark.parametrize("size", [(800, 480), (1920, 1080)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_legend_is_whole_at_both_sizes(qtbot, window, rig, size) -> None:
    """Issue 12: at 1920x1080 the curves' names were cut ("AAPL · sma_crossov…") and the
    dates under the chart lost their lower half. Every name is shown whole (on two lines if
    need be), every figure unclipped, and the date axis is tall enough for its font."""
    import os
    from pathlib import Path

    from PySide6.QtCore import QObject

    from app.ui.screenshot import save_png
    from tests.ui.conftest import unlocked_window
    from tests.ui.qmlwalk import items, window_problems

    days = weekdays(date(2024, 3, 4), 30)
    long = ["sma_crossover with a long name", "momentum_breakout_fast", "rsi2 dip buyer"]
    rows = []
    for i, d in enumerate(days):
        rows.append({"day": d, "algo_id": perf.ACCOUNT, "name": "Account", "ticker": "",
                     "value": 100_000 + 100 * i, "pnl": 100 * i, "status": "demo",
                     "taken": "close"})
        for k, name in enumerate(long):
            rows.append({"day": d, "algo_id": 7 + k, "name": name, "ticker": "AAPL",
                         "value": 10_000 - 40 * i * (k + 1), "pnl": -40 * i * (k + 1),
                         "status": "running", "taken": "close"})
    perf.record_day(rig.engine.system.conn, rows)
    w = unlocked_window(qtbot, window)
    w.resize(*size)
    w.open_performance()
    qtbot.waitUntil(lambda: w.perf_vm.model.rowCount() == 4, timeout=15000)
    qtbot.wait(300)
    page = w.pages["performance"]
    names = [it for it in items(page.side.rootObject()) if it.objectName() == "perfName"
             and it.isVisible()]
    assert sorted(str(n.property("text")) for n in names) == sorted(
        ["Account"] + [f"AAPL \u00b7 {n}" for n in long])
    for n in names:
        assert not n.property("truncated"), n.property("text")
        assert n.property("contentWidth") <= n.width() + 1, n.property("text")
    changes = page.side.rootObject().findChildren(QObject, "perfChange")
    assert all(not c.property("truncated") for c in changes)
    assert page.chart.date_labels_fit()
    assert not window_problems(w)
    shots = Path(os.environ.get("AUTOTRADER_SHOTS", "/tmp/autotrader-shots"))
    save_png(w, shots / f"{size[0]}x{size[1]}-performance-legend.png")
