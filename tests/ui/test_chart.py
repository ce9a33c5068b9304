"""The chart alone: 100,000 points, throttled redraws, markers, pan stops following."""

from __future__ import annotations

import time

import numpy as np

from app.ui.chart import MAX_FPS, PriceChart
from app.ui.chart_lines import MovingAverages, peak_decimate, sma


def series(n: int) -> tuple[np.ndarray, np.ndarray]:
    ts = 1_709_649_000 + 60 * np.arange(n, dtype=np.int64)
    close = 100 + np.cumsum(np.random.default_rng(3).normal(0, 0.05, n))
    return ts, close


def test_sma() -> None:
    out = sma(np.array([1.0, 2, 3, 4, 5]), 2)
    assert np.isnan(out[0]) and list(out[1:]) == [1.5, 2.5, 3.5, 4.5]
    assert np.isnan(sma(np.array([1.0]), 5)).all()


def test_redraws_are_throttled_with_100k_points(qtbot) -> None:
    c = PriceChart(sma_windows=(20, 50))
    qtbot.addWidget(c)
    c.resize(800, 400)
    c.show()
    ts, close = series(100_000)
    c.set_series(ts, close)
    qtbot.waitUntil(lambda: c.draws == 1, timeout=15000)
    d0, t0 = c.draws, time.monotonic()
    for i in range(200):  # far more appends than frames
        c.append(int(ts[-1]) + 60 * (i + 1), float(close[-1]))
        qtbot.wait(2)
    elapsed = time.monotonic() - t0
    qtbot.waitUntil(lambda: not c._dirty, timeout=15000)
    assert c.count == 100_200
    assert c.draws - d0 <= elapsed * MAX_FPS + 2
    # Following: the newest bar is in view.
    (x0, x1), _ = c.getPlotItem().getViewBox().viewRange()
    assert x0 < c.count - 1 < x1


def test_markers_and_corrections(qtbot) -> None:
    c = PriceChart()
    qtbot.addWidget(c)
    ts, close = series(500)
    c.set_series(ts, close)
    c.append(int(ts[-1]), 123.0)  # a corrected newest bar replaces it
    c.append(int(ts[0]), 1.0)  # an old bar arriving late is ignored
    assert c.count == 500 and c.closes()[-1] == 123.0 and c.closes()[0] == close[0]
    c.set_markers([{"type": "buy", "price": 100.0, "timestamp": "2024-03-05T14:35:00Z"}])
    c.add_marker({"type": "sell", "price": 101.0, "timestamp": int(ts[100])})
    assert c.marker_count() == 2


def test_user_pan_stops_following(qtbot) -> None:
    c = PriceChart()
    qtbot.addWidget(c)
    c.resize(600, 300)
    c.show()
    ts, close = series(2000)
    c.set_series(ts, close)
    qtbot.waitUntil(lambda: c.draws >= 1, timeout=15000)
    assert c.following
    c.getPlotItem().getViewBox().sigRangeChangedManually.emit([True, False])
    assert not c.following
    c.follow()
    assert c.following


def test_moving_averages_one_bar_at_a_time_match_the_whole_series() -> None:
    ts, close = series(3000)
    m = MovingAverages()
    m.set_windows((20, 50))
    out = m.update(close[:2000])
    assert np.allclose(out[0], sma(close[:2000], 20), equal_nan=True)
    buf = close.copy()
    for n in range(2001, 2300):
        buf[n - 1] = close[n - 1] + 1.0  # a bar arrives ...
        m.invalidate(n - 1)
        m.update(buf[:n])
        buf[n - 1] = close[n - 1]  # ... and is corrected
        m.invalidate(n - 1)
        out = m.update(buf[:n])
    assert len(out[1]) == 2299
    assert np.allclose(out[0], sma(close[:2299], 20), equal_nan=True)
    assert np.allclose(out[1], sma(close[:2299], 50), equal_nan=True)
    m.invalidate(0)  # a new series
    assert np.allclose(m.update(close[:10])[1], sma(close[:10], 50), equal_nan=True)


def test_peak_decimate_keeps_each_columns_high_and_low() -> None:
    y = np.array([5.0, 1, 9, 3, 4, 8, 2, 7, 6, np.nan])
    x, v = peak_decimate(y, 0, 9, 1)
    assert list(x) == list(range(9)) and list(v) == list(y[:9])
    x, v = peak_decimate(y, 0, 9, 4)  # buckets [0,4), [4,8), [8,9)
    assert list(v) == [9, 1, 8, 2, 6, 6]
    assert list(x) == [1.5, 1.5, 5.5, 5.5, 8.0, 8.0]
    _, v = peak_decimate(y, 8, 10, 2)
    assert np.isnan(v).all()  # a bucket with an undefined value is undefined
    assert len(peak_decimate(y, 5, 5, 3)[0]) == 0


def test_lines_hold_only_the_bars_in_view(qtbot) -> None:
    """100,000 bars in 800 px: each curve gets about two points per pixel column."""
    c = PriceChart(sma_windows=(20, 50))
    qtbot.addWidget(c)
    c.resize(800, 400)
    c.show()
    ts, close = series(100_000)
    c.set_series(ts, close)
    qtbot.waitUntil(lambda: c.draws >= 1 and not c._dirty, timeout=15000)
    width = c.getPlotItem().getViewBox().width()
    for curve in [c._price, *c._indicators]:
        x, y = curve.getData()
        assert 0 < len(x) <= 2 * width + 4
    assert c._price.getData()[1].max() == close.max()  # the peaks survive
    c.zoom(0.001)  # zoomed in (to the limit): each bar is its own point
    qtbot.waitUntil(lambda: len(c._price.getData()[0]) < 300, timeout=5000)
    x, y = c._price.getData()
    assert list(y) == list(close[int(x[0]):int(x[-1]) + 1])
