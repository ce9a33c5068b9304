"""The chart alone: 100,000 points, throttled redraws, markers, pan stops following."""

from __future__ import annotations

import time

import numpy as np

from app.ui.chart import MAX_FPS, PriceChart, sma


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
