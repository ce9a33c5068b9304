"""The chart through many sessions (issue 15): its session lines are made once and moved, so
a new session leaves no garbage behind and the scene holds a bounded number of items."""

from __future__ import annotations

import gc
from datetime import datetime

import numpy as np
import pyqtgraph as pg

from app.ui.chart import MAX_SEPARATORS, PriceChart
from db.calendar import EXCHANGE_TZ

OPEN = 1_709_649_000  # Tue Mar 05 2024 09:30 New York
BARS = 390


def session(d: int) -> np.ndarray:
    """Session ``d``'s minute bars (a day apart: each one starts a new session)."""
    return OPEN + d * 86_400 + 60 * np.arange(BARS, dtype=np.int64)


def history(days: int) -> tuple[np.ndarray, np.ndarray]:
    ts = np.concatenate([session(d) for d in range(days)])
    return ts, 100 + np.cumsum(np.random.default_rng(5).normal(0, 0.05, len(ts)))


def play(chart: PriceChart, d: int) -> None:
    """Session ``d`` bar by bar, as the live feed brings it, then drawn."""
    for k, t in enumerate(session(d).tolist()):
        price = 100.0 + 0.01 * k
        chart.append(t, price, price, price + 0.05, price - 0.05, 1000.0)
    chart._flush()


def day(d: int) -> str:
    return datetime.fromtimestamp(int(session(d)[0]), EXCHANGE_TZ).strftime("%a %b %d")


def lines_alive() -> int:
    """InfiniteLines Python still holds, garbage not yet collected included."""
    return sum(isinstance(o, pg.InfiniteLine) for o in gc.get_objects())


def shown(qtbot, days: int) -> PriceChart:
    c = PriceChart()
    qtbot.addWidget(c)
    c.resize(1300, 900)
    c.show()
    c.set_series(*history(days))
    qtbot.waitUntil(lambda: c.draws >= 1 and not c._dirty, timeout=15000)
    return c


def test_new_sessions_leave_no_garbage_lines(qtbot) -> None:
    """Each session used to remove every session line and make them all again: the old
    ones, pyqtgraph items in reference cycles, waited for a full collection (rare in the
    app), about 1 MB a session with the chart docked."""
    c = shown(qtbot, 3)
    assert c.separator_count() == 2
    gc.collect()
    gc.disable()  # as between the app's rare full collections
    try:
        before = lines_alive()
        for d in range(3, 11):
            play(c, d)
        after = lines_alive()
    finally:
        gc.enable()
    assert c.separator_count() == 10
    assert after - before == 8  # one new line a session, nothing left over
    assert c.separator_labels() == [day(d) for d in range(1, 11)]


def test_scene_items_stay_bounded_past_the_separator_cap(qtbot) -> None:
    c = shown(qtbot, MAX_SEPARATORS + 3)
    items = len(c.scene().items())
    pool = list(c._separator_pool)
    for d in range(MAX_SEPARATORS + 3, MAX_SEPARATORS + 8):
        play(c, d)
    assert c.separator_count() == MAX_SEPARATORS
    assert len(c.scene().items()) == items
    assert c._separator_pool == pool  # the same lines, moved
    last = MAX_SEPARATORS + 8
    assert c.separator_labels() == [day(d) for d in range(last - MAX_SEPARATORS, last)]
    starts = c.session_starts()[1:][-MAX_SEPARATORS:]
    assert [line.value() for line in c._separators] == [i - 0.5 for i in starts]


def test_reset_hides_the_lines_and_an_empty_chart_takes_bars(qtbot) -> None:
    """A reset chart (another algorithm opening) keeps its lines hidden for later; bars
    appended to an empty chart start its first session (they raised IndexError)."""
    c = shown(qtbot, 4)
    items = len(c.scene().items())
    c.reset()
    c._flush()
    assert c.separator_count() == 0
    assert not any(line.isVisible() for line in c._separator_pool)
    assert len(c.scene().items()) == items
    play(c, 0)
    play(c, 1)
    assert c.count == 2 * BARS
    assert list(c.session_starts()) == [0, BARS]
    assert c.separator_labels() == [day(1)]
    assert c._separator_pool[0].isVisible()
