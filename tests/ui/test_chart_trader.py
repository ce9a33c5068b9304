"""The chart a trader reads: candles and volume from the bars' OHLCV, merged when zoomed out,
the crosshair on press-and-hold (real mouse events), the last-price tag and separator dates."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from app.ui.chart import HOLD_MS, PriceChart, buckets, merge_ohlcv
from db.calendar import EXCHANGE_TZ

T0 = 1_709_649_000  # 2024-03-05 14:30 UTC, 09:30 in New York


def bars(n: int, day_gap_at: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts = T0 + 60 * np.arange(n, dtype=np.int64)
    if day_gap_at is not None:
        ts[day_gap_at:] += 86_400 - 60 * day_gap_at  # the next session, same minute
    rng = np.random.default_rng(5)
    close = 100 + np.cumsum(rng.normal(0, 0.2, n))
    o = np.concatenate(([100.0], close[:-1]))
    h = np.maximum(o, close) + 0.3
    lo = np.minimum(o, close) - 0.3
    v = rng.integers(100, 5000, n).astype(float)
    return ts, close, np.column_stack([o, h, lo, v])


def test_merge_keeps_each_bucket_ohlcv() -> None:
    o = np.array([1, 2, 3, 4, 5], dtype=float)
    h = o + 10
    lo = o - 10
    c = o + 0.5
    v = np.array([10, 20, 30, 40, 50], dtype=float)
    assert buckets(5, 0.0, 4.0, 100) == (0, 5, 1)
    i0, i1, k = buckets(5, 0.0, 4.0, 2)
    assert (i0, i1, k) == (0, 5, 3)
    x, mo, mh, ml, mc, mv = merge_ohlcv(o, h, lo, c, v, i0, i1, k)
    # Buckets [0,1,2] and [3,4]: first open, highest high, lowest low, last close, summed volume.
    assert list(mo) == [1, 4] and list(mh) == [13, 15] and list(ml) == [-9, -6]
    assert list(mc) == [3.5, 5.5] and list(mv) == [60, 90] and list(x) == [1.0, 3.5]


def test_candles_volume_and_last_tag(qtbot) -> None:
    c = PriceChart()
    qtbot.addWidget(c)
    c.resize(800, 420)
    c.show()
    ts, close, ohlv = bars(600, day_gap_at=250)
    c.set_series(ts, close, ohlv)
    c.set_candles(True)
    qtbot.waitUntil(lambda: c.draws > 0 and not c._dirty, timeout=10_000)
    assert c.candles and not c._price.isVisible() and c._candle_item.isVisible()
    # Today's session is in view; the candles' y-range covers the visible highs and lows.
    (x0, x1), (y0, y1) = c.getPlotItem().getViewBox().viewRange()
    first = 250
    assert x0 >= first - 61 and x1 >= 599
    lo, hi = c.visible_bounds(1, (x0, x1), volume=False)
    assert y0 <= lo and y1 >= hi
    assert lo == pytest.approx(ohlv[max(0, int(x0)):, 2].min(), rel=1e-6)
    # The volume pane is x-linked and its range holds the largest visible volume.
    (vx0, vx1), (_vy0, vy1) = c.volume_plot.getViewBox().viewRange()
    assert (round(vx0, 3), round(vx1, 3)) == (round(x0, 3), round(x1, 3))
    assert vy1 >= ohlv[max(0, int(x0)):, 3].max()
    # The last-price tag shows the last close (it read 0.00 while hidden once).
    assert c._last_tag.label.toPlainText() == f"{close[-1]:,.2f}"
    # The separator carries its session's date, and the legend sits outside the plot.
    assert c.separator_labels() == ["Wed Mar 06"]
    assert "candles" in c.legend_text() and "buy" in c.legend_text()
    c.set_candles(False)
    assert c._price.isVisible() and not c._candle_item.isVisible()


def test_press_and_hold_shows_the_crosshair_a_drag_pans(qtbot) -> None:
    c = PriceChart(sma_windows=(20,))
    qtbot.addWidget(c)
    c.resize(800, 420)
    c.show()
    ts, close, ohlv = bars(400)
    c.set_series(ts, close, ohlv)
    qtbot.waitUntil(lambda: c.draws > 0 and not c._dirty, timeout=10_000)
    vb = c.getPlotItem().getViewBox()

    def at(bar: float) -> QPoint:
        scene = vb.mapViewToScene(QPointF(bar, float(close[int(bar)])))
        return c.mapFromScene(scene)

    vp = c.viewport()
    p = at(300)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=p)
    qtbot.wait(HOLD_MS + 150)
    assert c.crosshair_index() is not None and abs(c.crosshair_index() - 300) <= 1
    legend = c.legend_text()
    i = c.crosshair_index()
    assert f"C {close[i]:,.2f}" in legend and f"H {ohlv[i, 1]:,.2f}" in legend
    assert "SMA 20" in legend and "Vol " in legend
    # Moving the held finger moves the crosshair, not the chart.
    (x0, x1), _ = vb.viewRange()
    qtbot.mouseMove(vp, pos=at(350))
    qtbot.waitUntil(lambda: c.crosshair_index() is not None and c.crosshair_index() > 340,
                    timeout=2000)
    assert vb.viewRange()[0] == [x0, x1] and c.following
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=at(350))
    assert c.crosshair_index() is None and "hold a finger" in c.legend_text()

    # A quick drag pans (and stops following) with no crosshair.
    start = at(300)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=start)
    for dx in range(0, 200, 20):
        qtbot.mouseMove(vp, pos=start + QPoint(dx, 0))
        qtbot.wait(5)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=start + QPoint(200, 0))
    # The hold's timer is what would start a crosshair: once released it must not be running
    # (no fixed wait that a slow machine could pass by accident).
    assert not c._hold_timer.isActive()
    assert c.crosshair_index() is None
    assert not c.following


def test_axis_names_each_day_once(qtbot) -> None:
    """"14:40, Dec 01, Dec 01" was seen: a day's date appears at one tick only."""
    c = PriceChart()
    qtbot.addWidget(c)
    ts, close, ohlv = bars(600, day_gap_at=250)
    c.set_series(ts, close, ohlv)
    axis = c.volume_plot.getAxis("bottom")
    for lo, hi, px in ((200.0, 320.0, 700), (0.0, 600.0, 700), (230.0, 600.0, 400)):
        levels = axis.tickSpacing(lo, hi, px)
        labels = []
        for spacing, offset in levels:
            first = (lo // spacing + 1) * spacing + offset
            values = list(np.arange(first, hi, spacing))
            labels += [t for t in axis.tickStrings(values, 1.0, spacing) if t]
        dates = [t for t in labels if not t[0].isdigit()]
        assert dates.count("Mar 06") == 1, labels
        assert len(labels) == len(set(labels)), labels


def test_the_left_edge_keeps_its_date(qtbot) -> None:
    """Panned so the separator is out of view: the date is pinned at the left edge instead of
    being cut there."""
    c = PriceChart()
    qtbot.addWidget(c)
    c.resize(800, 420)
    c.show()
    ts, close, ohlv = bars(600, day_gap_at=250)
    c.set_series(ts, close, ohlv)
    qtbot.waitUntil(lambda: c.draws > 0 and not c._dirty, timeout=10_000)
    vb = c.getPlotItem().getViewBox()
    vb.setXRange(300, 500, padding=0)  # inside the second session, its line out of view
    qtbot.wait(50)
    assert c.edge_date() == "Wed Mar 06"
    assert not c._separators[0].label.isVisible()
    vb.setXRange(200, 400, padding=0)  # the line in view: its own label, nothing pinned
    qtbot.wait(50)
    assert c._separators[0].label.isVisible() and c.edge_date() == "Tue Mar 05"


def test_last_tag_beside_newest_bar_and_dates_inside(qtbot) -> None:
    """Seen in a real window at 800x480: the last-price tag covered the newest bars, and the
    newest session's date ran out of the plot at the right edge ("Tue Dec 0")."""
    c = PriceChart()
    qtbot.addWidget(c)
    c.resize(440, 300)
    c.show()
    ts, close, ohlv = bars(600, day_gap_at=560)
    c.set_series(ts, close, ohlv)
    c.set_candles(True)
    c.show_days(2)
    qtbot.waitUntil(lambda: c.draws > 0 and not c._dirty, timeout=10_000)
    vb = c.getPlotItem().getViewBox()

    def scene_x(x: float) -> float:
        return vb.mapViewToScene(QPointF(x, 0.0)).x()

    label = c._last_tag.label
    tag_left = label.mapToScene(label.boundingRect().topLeft()).x()
    newest_right = scene_x(599 + 0.35)  # the newest candle's right edge
    assert newest_right + 4 <= tag_left
    assert tag_left >= scene_x(vb.viewRange()[0][0])
    sep = c._separators[-1]
    assert sep.label.isVisible()
    right = sep.label.mapToScene(sep.label.boundingRect().topRight()).x()
    assert right <= vb.sceneBoundingRect().right() + 1


def test_one_day_keeps_showing_the_whole_session_as_it_grows(qtbot) -> None:
    """Seen in a real window: "1D" pressed 40 minutes into the session kept a 60-bar view,
    so two hours later the morning was out of view."""
    c = PriceChart()
    qtbot.addWidget(c)
    c.resize(600, 300)
    c.show()
    ts, close, ohlv = bars(300, day_gap_at=260)  # today: 40 bars so far
    c.set_series(ts, close, ohlv)
    c.show_days(1)
    qtbot.waitUntil(lambda: c.draws > 0 and not c._dirty, timeout=10_000)
    vb = c.getPlotItem().getViewBox()
    for i in range(120):  # two more hours of bars
        t = int(ts[-1]) + 60 * (i + 1)
        c.append(t, 100.0, 100.0, 100.5, 99.5, 1000.0)
    qtbot.waitUntil(lambda: not c._dirty and c.count == 420, timeout=10_000)
    qtbot.wait(150)
    x0, x1 = vb.viewRange()[0]
    assert x0 <= 260 and x1 >= 419  # today's first bar and the newest one in view
    assert x0 >= 259 - 2  # and not yesterday's
    c.zoom(0.5)  # a zoom chooses a width of its own, kept while following
    w = vb.viewRange()[0][1] - vb.viewRange()[0][0]
    c.append(int(ts[-1]) + 60 * 121, 100.0)
    qtbot.waitUntil(lambda: not c._dirty, timeout=10_000)
    qtbot.wait(150)
    assert abs((vb.viewRange()[0][1] - vb.viewRange()[0][0]) - w) < 1.0


def test_dates_of_short_sessions_do_not_overlap(qtbot) -> None:
    """Seen at 1920x1080 on 5D: a half day's date ran into the next one ("Fri Nov 27Mon Nov
    30"). The newer date stays; the older one hides while they would overlap."""
    c = PriceChart()
    qtbot.addWidget(c)
    c.resize(500, 300)
    c.show()
    ts, close, ohlv = bars(800, day_gap_at=390)
    ts[400:] += 86_400 - 60 * 10  # a 10-bar session between two full ones
    c.set_series(ts, close, ohlv)
    c.show_days(3)
    qtbot.waitUntil(lambda: c.draws > 0 and not c._dirty, timeout=10_000)
    qtbot.wait(100)
    shown = [s for s in c._separators if s.label.isVisible()]
    assert shown and shown[-1] is c._separators[-1]
    rects = [s.label.mapRectToScene(s.label.boundingRect()) for s in shown]
    for a, b in zip(rects, rects[1:], strict=False):
        assert a.right() <= b.left()
    assert len(shown) < len(c._separators)  # the short session's date gave way


def test_axis_ticks_on_round_times(qtbot) -> None:
    """Ticks counted from the series' first bar read "12:30, 14:40" (seen under Xvfb at
    1920x1080); they sit on round New York times, and on session starts for whole days."""
    c = PriceChart()
    qtbot.addWidget(c)
    ts, close, ohlv = bars(1200, day_gap_at=390)  # T0 is 09:30 in New York
    ts = ts + 60 * 17  # the series starts at 09:47, not on a round minute
    c.set_series(ts, close, ohlv)
    axis = c.volume_plot.getAxis("bottom")
    for lo, hi, px in ((0.0, 390.0, 300), (400.0, 700.0, 700), (0.0, 1199.0, 120)):
        [(spacing, values)] = axis.tickValues(lo, hi, px)
        assert values, (lo, hi, px)
        for v in values:
            t = datetime.fromtimestamp(int(ts[int(v)]), EXCHANGE_TZ)
            if spacing >= 390:
                assert int(v) in c.session_starts()
            else:
                assert (t.hour * 60 + t.minute) % int(spacing) == 0, (spacing, t)
        labels = [x for x in axis.tickStrings(values, 1.0, spacing) if x]
        assert labels


def test_axis_dates_of_short_sessions_do_not_crowd(qtbot) -> None:
    """5D at 1920x1080 read "Nov 27 Nov 30" run together: a half day's date gives way."""
    c = PriceChart()
    qtbot.addWidget(c)
    ts, close, ohlv = bars(1200, day_gap_at=390)
    ts[400:] += 86_400 - 60 * 10  # a 10-bar session
    c.set_series(ts, close, ohlv)
    [(spacing, values)] = c.volume_plot.getAxis("bottom").tickValues(0.0, 1199.0, 200)
    assert spacing >= 390 and 400.0 in values and 390.0 not in values


def test_session_starts_follow_appended_bars(qtbot) -> None:
    """Kept up to date bar by bar (the whole series is not scanned again per bar)."""
    from app.ui.chart import session_starts

    c = PriceChart()
    qtbot.addWidget(c)
    ts, close, ohlv = bars(300, day_gap_at=200)
    c.set_series(ts, close, ohlv)
    assert list(c.session_starts()) == [0, 200]
    t = int(ts[-1])
    for step in (60, 60, 86_400, 60, 0, 60):  # a new session, and a corrected bar (0)
        t += step
        c.append(t, 100.0)
        assert list(c.session_starts()) == list(session_starts(c.timestamps()))
    assert list(c.session_starts()) == [0, 200, 302]
