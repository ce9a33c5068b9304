"""The live price chart: price line, indicator lines, buy/sell markers, exchange-time axis.

x is the bar's position in the series (one step per minute bar) so nights and weekends take no
room; the axis labels each tick with that bar's New York time. Appends are buffered and drawn
by a timer at most ``MAX_FPS`` times a second; clip-to-view and peak downsampling keep 100,000
points smooth. One finger pans, a pinch or the wheel zooms; panning away stops following the
newest bar until ``follow()``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtWidgets import QWidget

from db.calendar import EXCHANGE_TZ
from db.timeutil import to_epoch

logger = logging.getLogger(__name__)

MAX_FPS = 10
DEFAULT_WINDOW = 390  # one regular session of minute bars
SESSION_GAP = 6 * 3600  # a gap this long between two bars starts a new session
MAX_SEPARATORS = 40  # session lines drawn (the most recent ones)
SEPARATOR_PEN = {"color": "#6b7686", "width": 1, "style": Qt.PenStyle.DashLine}


def session_starts(ts: np.ndarray) -> np.ndarray:
    """Indexes of the first bar of each session (bar 0 included)."""
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(([0], np.flatnonzero(np.diff(ts) > SESSION_GAP) + 1))


def right_pad(width: float) -> float:
    """Room at the right edge so the newest bar and its marker are not clipped."""
    return max(3.0, width * 0.04)
# Bar spacings the axis may put ticks at, in bars (minutes within a session).
TICK_STEPS = (1, 5, 10, 15, 30, 60, 130, 390, 780, 1950, 3900, 7800, 19500, 39000)

PRICE_PEN = {"color": "#0a2f6b", "width": 2}
INDICATOR_COLORS = ("#c25e00", "#6a1b9a", "#00796b", "#5d4037")
BUY_BRUSH = "#0b6b2f"
SELL_BRUSH = "#b0201a"


def sma(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average; NaN until ``window`` values exist."""
    out = np.full(values.shape, np.nan)
    if window <= 0 or len(values) < window:
        return out
    c = np.cumsum(np.insert(values.astype(float), 0, 0.0))
    out[window - 1:] = (c[window:] - c[:-window]) / window
    return out


def spacing_bars(spacing: float, i: int) -> int:
    """How many bars back the previous tick is (at least 1, never before bar 0)."""
    return max(1, min(i, int(spacing)))


class ExchangeTimeAxis(pg.AxisItem):
    """Bottom axis whose tick labels are the New York time of the bar at that x."""

    def __init__(self, chart: PriceChart) -> None:
        super().__init__("bottom")
        self._chart = chart

    def tickSpacing(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803
        span = max(1.0, maxVal - minVal)
        want = max(2, int(size / 90))  # a label every ~90 px
        major = next((s for s in TICK_STEPS if span / s <= want), TICK_STEPS[-1])
        minor = next((s for s in reversed(TICK_STEPS) if s < major), major)
        return [(float(major), 0.0), (float(minor), 0.0)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        """New York time of each tick's bar; the date instead when the tick is the first in
        its session (so a date is never repeated: "Nov 30, 14:40, Dec 01")."""
        ts = self._chart.timestamps()
        out = []
        prev_day = None
        for v in values:
            i = int(round(v))
            if 0 <= i < len(ts):
                t = datetime.fromtimestamp(int(ts[i]), EXCHANGE_TZ)
                day = t.date()
                if prev_day is None:
                    # The first label says the day if the ticks are days apart or a session
                    # starts between it and the previous tick position.
                    back = i - spacing_bars(spacing, i)
                    new_day = spacing >= 390 or (i > 0 and datetime.fromtimestamp(
                        int(ts[back]), EXCHANGE_TZ).date() != day)
                else:
                    new_day = day != prev_day
                out.append(t.strftime("%b %d") if new_day else t.strftime("%H:%M"))
                prev_day = day
            else:
                out.append("")
        return out


class PriceChart(pg.PlotWidget):
    """A chart of one ticker's closes with optional SMA lines and fill markers."""

    userMoved = Signal()

    def __init__(self, parent: QWidget | None = None, sma_windows: Iterable[int] = ()) -> None:
        self._ts = np.zeros(1024, dtype=np.int64)
        self._close = np.zeros(1024, dtype=float)
        self._n = 0
        axis = ExchangeTimeAxis(self)
        super().__init__(parent, background="w", axisItems={"bottom": axis})
        self.setObjectName("priceChart")
        self._follow = True
        self._dirty = False
        self._draws = 0
        self._last_draw = 0.0
        self._markers: list[tuple[int, str, float]] = []  # (epoch, side, price)
        self._sma_windows: tuple[int, ...] = ()
        self._scale = 1.0
        self._marker_size = 16
        item = self.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.25)
        item.setMenuEnabled(False)
        item.hideButtons()
        for name in ("left", "bottom"):
            ax = item.getAxis(name)
            ax.setPen(pg.mkPen("#0d1117"))
            ax.setTextPen(pg.mkPen("#0d1117"))
        # Prices on the right, where the newest bar is; the last price tagged on the axis.
        item.showAxis("right")
        item.hideAxis("left")
        ax = item.getAxis("right")
        ax.setPen(pg.mkPen("#0d1117"))
        ax.setTextPen(pg.mkPen("#0d1117"))
        ax.setWidth(64)
        self._separators: list[pg.InfiniteLine] = []
        self._separator_at: tuple[int, ...] = ()
        self._want_days = 1  # the next draw shows today's session
        self._width = 0.0  # bars in view while following (0: not chosen yet)
        self._last_tag = pg.InfiniteLine(
            angle=0, movable=False, pen=pg.mkPen("#0a2f6b", width=1, style=Qt.PenStyle.DotLine),
            label="{value:.2f}", labelOpts={"position": 0.98, "color": "#ffffff",
                                             "fill": "#0a2f6b", "anchors": [(1, 0.5), (1, 0.5)]})
        self._last_tag.setZValue(20)
        item.addItem(self._last_tag, ignoreBounds=True)
        self._last_tag.hide()
        self._price = item.plot(pen=pg.mkPen(**PRICE_PEN), skipFiniteCheck=True)
        self._price.setClipToView(True)
        self._price.setDownsampling(auto=True, method="peak")
        self._indicators: list[pg.PlotDataItem] = []
        self._buys = pg.ScatterPlotItem(symbol="t1", size=16, brush=BUY_BRUSH, pen=pg.mkPen("w"))
        self._sells = pg.ScatterPlotItem(symbol="t", size=16, brush=SELL_BRUSH, pen=pg.mkPen("w"))
        item.addItem(self._buys)
        item.addItem(self._sells)
        self._legend = item.addLegend(offset=(8, 8), labelTextColor="#0d1117",
                                      brush=pg.mkBrush(255, 255, 255, 220))
        self._legend.addItem(self._price, "price")
        vb = item.getViewBox()
        vb.setMouseEnabled(x=True, y=False)
        vb.setAutoVisible(y=True)
        vb.enableAutoRange(axis="y")
        vb.sigRangeChangedManually.connect(self._on_manual)
        self.viewport().grabGesture(Qt.GestureType.PinchGesture)
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / MAX_FPS))
        self._timer.timeout.connect(self._flush)
        self._timer.start()
        self.set_indicators(sma_windows)

    # --- data ----------------------------------------------------------------------------
    def timestamps(self) -> np.ndarray:
        return self._ts[: self._n]

    def closes(self) -> np.ndarray:
        return self._close[: self._n]

    @property
    def count(self) -> int:
        return self._n

    @property
    def draws(self) -> int:
        """How many times the curves were handed new data (for tests and the benchmark)."""
        return self._draws

    def get_sma_count(self) -> int:
        return len(self._indicators)

    def sma_windows(self) -> tuple[int, ...]:
        return self._sma_windows

    def marker_count(self) -> int:
        return len(self._markers)

    def set_indicators(self, windows: Iterable[int]) -> None:
        """SMA lines to draw, e.g. (20, 50) for the SMA crossover plugin."""
        item = self.getPlotItem()
        for c in self._indicators:
            item.removeItem(c)
            self._legend.removeItem(c)
        self._indicators = []
        self._sma_windows = tuple(int(w) for w in windows if int(w) > 1)
        for i, w in enumerate(self._sma_windows):
            c = item.plot(pen=pg.mkPen(INDICATOR_COLORS[i % len(INDICATOR_COLORS)],
                                       width=max(1.5, 2 * self._scale)),
                          skipFiniteCheck=True, connect="finite")
            c.setClipToView(True)
            c.setDownsampling(auto=True, method="peak")
            self._indicators.append(c)
            self._legend.addItem(c, f"SMA {w}")
        self._dirty = True

    def set_series(self, ts: np.ndarray | list[int], close: np.ndarray | list[float]) -> None:
        """Replace the whole series (oldest first)."""
        ts = np.asarray(ts, dtype=np.int64)
        close = np.asarray(close, dtype=float)
        cap = max(1024, int(len(ts) * 1.5))
        self._ts = np.zeros(cap, dtype=np.int64)
        self._close = np.zeros(cap, dtype=float)
        self._n = len(ts)
        self._ts[: self._n] = ts
        self._close[: self._n] = close
        self._follow = True
        self._want_days = 1
        self._dirty = True

    def append(self, ts: int, close: float) -> None:
        """Add one bar (or correct the newest one if ``ts`` repeats); older bars are ignored."""
        n = self._n
        if n and ts < self._ts[n - 1]:
            return
        if n and ts == self._ts[n - 1]:
            self._close[n - 1] = close
        else:
            if n == len(self._ts):
                self._ts = np.resize(self._ts, n * 2)
                self._close = np.resize(self._close, n * 2)
            self._ts[n] = ts
            self._close[n] = close
            self._n = n + 1
        self._dirty = True

    def set_markers(self, transactions: Iterable[dict]) -> None:
        """Buy/sell markers from transactions (``type``, ``price``, ``timestamp``)."""
        self._markers = [(to_epoch(t["timestamp"]), str(t["type"]), float(t["price"]))
                         for t in transactions]
        self._dirty = True

    def add_marker(self, transaction: dict) -> None:
        self._markers.append((to_epoch(transaction["timestamp"]), str(transaction["type"]),
                              float(transaction["price"])))
        self._dirty = True

    def show_days(self, days: int) -> None:
        """Show the last ``days`` sessions (1 = today's), following the newest bar."""
        self._want_days = max(1, int(days))
        self._follow = True
        self._dirty = True

    def session_starts(self) -> np.ndarray:
        return session_starts(self.timestamps())

    def separator_count(self) -> int:
        return len(self._separators)

    def _draw_separators(self) -> None:
        starts = session_starts(self.timestamps())[1:][-MAX_SEPARATORS:]
        key = tuple(int(i) for i in starts)
        if key == self._separator_at:
            return
        item = self.getPlotItem()
        for line in self._separators:
            item.removeItem(line)
        self._separators = []
        ts = self.timestamps()
        for i in key:
            day = datetime.fromtimestamp(int(ts[i]), EXCHANGE_TZ).strftime("%a %b %d")
            line = pg.InfiniteLine(pos=i - 0.5, angle=90, movable=False,
                                   pen=pg.mkPen(**SEPARATOR_PEN), label=day,
                                   labelOpts={"position": 0.97, "color": "#3d4654",
                                              "anchors": [(0, 0), (0, 0)]})
            item.addItem(line, ignoreBounds=True)
            self._separators.append(line)
        self._separator_at = key

    def reset(self) -> None:
        self.set_series([], [])
        self._markers = []

    def apply_scale(self, scale: float) -> None:
        """Line widths, markers and legend text for the screen's scale (1.0 at 800x480)."""
        self._price.setPen(pg.mkPen(PRICE_PEN["color"], width=max(1.5, 2 * scale)))
        for i, c in enumerate(self._indicators):
            c.setPen(pg.mkPen(INDICATOR_COLORS[i % len(INDICATOR_COLORS)],
                              width=max(1.5, 2 * scale)))
        self._marker_size = int(16 * scale)
        self._buys.setSize(self._marker_size)
        self._sells.setSize(self._marker_size)
        size = f"{max(8, round(9 * scale))}pt"
        self._legend.setLabelTextSize(size)
        for _sample, label in self._legend.items:
            label.setText(label.text, size=size)
        self._scale = scale

    # --- view ----------------------------------------------------------------------------
    def follow(self) -> None:
        """Keep the newest bar in view again."""
        self._follow = True
        self._dirty = True

    @property
    def following(self) -> bool:
        return self._follow

    def zoom(self, factor: float) -> None:
        """factor < 1 zooms in; keeps the right edge when following."""
        vb = self.getPlotItem().getViewBox()
        (x0, x1), _ = vb.viewRange()
        width = max(10.0, min((x1 - x0) * factor, self._n + 10.0))
        self._width = width
        if self._follow:
            right = self._n + right_pad(width)
            vb.setXRange(right - width, right, padding=0)
        else:
            mid = (x0 + x1) / 2
            vb.setXRange(mid - width / 2, mid + width / 2, padding=0)

    def _on_manual(self, *args) -> None:
        self._follow = False
        self.userMoved.emit()

    def viewportEvent(self, ev: QEvent) -> bool:  # noqa: N802
        if ev.type() == QEvent.Type.Gesture:
            pinch = ev.gesture(Qt.GestureType.PinchGesture)
            if pinch is not None:
                f = pinch.scaleFactor()
                if f > 0:
                    self._follow = False
                    self.zoom(1.0 / f)
                ev.accept()
                return True
        return super().viewportEvent(ev)

    def _flush(self) -> None:
        if not self._dirty or not self.isVisible():
            return
        self._dirty = False
        n = self._n
        x = np.arange(n, dtype=float)
        y = self._close[:n]
        self._price.setData(x, y, skipFiniteCheck=True)
        for w, c in zip(self._sma_windows, self._indicators, strict=True):
            c.setData(x, sma(y, w), connect="finite", skipFiniteCheck=True)
        self._draw_markers()
        self._draw_separators()
        vb = self.getPlotItem().getViewBox()
        if n:
            last = float(y[-1])
            self._last_tag.setValue(last)
            self._last_tag.label.setFormat(f"{last:,.2f}")  # the text itself, no placeholder
            self._last_tag.show()
        else:
            self._last_tag.hide()
        if self._follow and n:
            (x0, x1), _ = vb.viewRange()
            if self._want_days:
                starts = session_starts(self.timestamps())
                first = int(starts[max(0, len(starts) - self._want_days)])
                # A session just begun still shows a sensible width (at least an hour).
                first = min(first, max(0, n - 60))
                self._want_days = 0
                width = n - first + 1
            else:
                width = self._width or min(n, DEFAULT_WINDOW) + 2
            self._width = width
            pad = right_pad(width)
            vb.setLimits(xMin=-pad, xMax=n + pad, minXRange=10)
            vb.setXRange(n - width, n + pad, padding=0)
        elif n:
            span = (vb.viewRange()[0][1] - vb.viewRange()[0][0])
            vb.setLimits(xMin=-right_pad(span), xMax=n + right_pad(span), minXRange=10)
        self._draws += 1
        self._last_draw = time.monotonic()

    def _draw_markers(self) -> None:
        ts = self._ts[: self._n]
        buys: list[tuple[float, float]] = []
        sells: list[tuple[float, float]] = []
        if len(ts):
            for epoch, side, px in self._markers:
                i = int(np.searchsorted(ts, epoch, side="right")) - 1
                (buys if side == "buy" else sells).append((float(max(i, 0)), px))
        self._buys.setData(pos=buys) if buys else self._buys.clear()
        self._sells.setData(pos=sells) if sells else self._sells.clear()
