"""The live price chart: price line or candlesticks, a volume pane, indicator lines, buy/sell
markers, session separators with the date, an exchange-time axis and a press-and-hold crosshair.

x is the bar's position in the series (one step per minute bar) so nights and weekends take no
room; the axis labels each tick with that bar's New York time. Appends are buffered and drawn
by a timer at most ``MAX_FPS`` times a second; clip-to-view and peak downsampling keep 100,000
points smooth, and candles and volume bars are drawn for the visible bars only, merged into
wider buckets when there are more bars than pixels to show them. One finger pans, a pinch or
the wheel zooms; panning away stops following the newest bar until ``follow()``. Holding a
finger still for ``HOLD_MS`` shows the crosshair with the bar's time, OHLC, volume and the
indicators' values in the legend row above the plot (the legend lives outside the plot, so it
never covers the newest bars or a separator's date).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QLine, QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QWidget

from app.ui.chart_lines import MovingAverages, peak_decimate
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


def right_pad(width: float, tag_px: float = 0.0, plot_px: float = 0.0) -> float:
    """Room at the right edge, in bars, so the newest bar and its marker are not clipped and
    the last-price tag (``tag_px`` wide, at the right edge of a plot ``plot_px`` wide) sits
    beside the newest bar, not over it: at least 12% of the width shown."""
    pad = max(5.0, width * 0.12)
    need = tag_px + 8.0  # the tag and a gap, in pixels, right of the newest bar
    if tag_px > 0 and plot_px > need + 20:
        # The newest bar (x = n - 1) sits (pad + 1) bars from the right edge of a view
        # (width + pad) bars wide: (pad + 1) * plot_px / (width + pad) >= need.
        pad = max(pad, (need * width - plot_px) / (plot_px - need))
    return pad
# Bar spacings the axis may put ticks at, in bars (minutes within a session).
TICK_STEPS = (1, 5, 10, 15, 30, 60, 120, 390, 780, 1950, 3900, 7800, 19500, 39000)

PRICE_PEN = {"color": "#0a2f6b", "width": 2}
GRID_COLOR = "#dfe3e8"  # opaque: what the 25% dark grid looked like on white, a bit lighter
UP_COLOR = "#0b6b2f"
DOWN_COLOR = "#b0201a"
VOLUME_UP = "#8fc9a3"
VOLUME_DOWN = "#e6a3a0"
HOLD_MS = 450  # a finger held this long without moving shows the crosshair
HOLD_SLOP = 10  # pixels a finger may drift while held
MIN_BUCKET_PX = 3.0  # a candle or volume bar is at least this wide; more bars are merged
INDICATOR_COLORS = ("#c25e00", "#6a1b9a", "#00796b", "#5d4037")
BUY_BRUSH = "#0b6b2f"
SELL_BRUSH = "#b0201a"


def spacing_bars(spacing: float, i: int) -> int:
    """How many bars back the previous tick is (at least 1, never before bar 0)."""
    return max(1, min(i, int(spacing)))



def style_plot(plot: pg.PlotItem) -> None:
    """The app's plot look: no context menu or buttons, the value axis on the right, dark
    axis lines and labels (the price chart and the Performance screen)."""
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.showAxis("right")
    plot.hideAxis("left")
    for name in ("left", "right", "top", "bottom"):
        # No unit prefixes: otherwise every range change rewrites each axis's (empty) HTML
        # label and asks the layout for its size again, a bar at a time.
        plot.getAxis(name).enableAutoSIPrefix(False)
    for name in ("right", "bottom"):
        ax = plot.getAxis(name)
        ax.setPen(pg.mkPen("#0d1117"))
        ax.setTextPen(pg.mkPen("#0d1117"))

class PriceAxis(pg.AxisItem):
    """The price axis: one level of round steps (1, 2 or 5 times a power of ten) about
    every 45 px (at least four steps), each with its grid line."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803
        span = maxVal - minVal
        if not (math.isfinite(span) and span > 0 and size > 0):
            return super().tickSpacing(minVal, maxVal, size)
        raw = span / max(4.0, size / 45.0)  # at least four steps, even on a short plot
        mag = 10.0 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1.0, 2.0, 5.0, 10.0) if m * mag >= raw * 0.999)
        return [(step, 0.0)]


class ExchangeTimeAxis(pg.AxisItem):
    """Bottom axis whose tick labels are the New York time of the bar at that x."""

    def __init__(self, chart: PriceChart) -> None:
        super().__init__("bottom")
        self._chart = chart

    def tickSpacing(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803
        span = max(1.0, maxVal - minVal)
        want = max(2, int(size / 90))  # a label every ~90 px
        major = next((s for s in TICK_STEPS if span / s <= want), TICK_STEPS[-1])
        self._major = float(major)
        # One level: the grid is opaque, so a finer level's lines would be as dark.
        return [(float(major), 0.0)]

    def tickValues(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803
        """Ticks on round New York times (10:00, 12:00, 14:00 for a 120-minute step; each
        session's first bar for steps of a session or more), not every n-th bar counted
        from the series' first bar (that read 12:30, 14:40)."""
        spacing = self.tickSpacing(minVal, maxVal, size)[0][0]
        ts = self._chart.timestamps()
        i0, i1 = max(0, math.ceil(minVal)), min(len(ts), math.floor(maxVal) + 1)
        if i1 <= i0:
            return [(spacing, [])]
        starts = self._chart.session_starts()
        if spacing >= 390:  # whole sessions: every (spacing / 390)-th session's first bar
            every = max(1, int(round(spacing / 390)))
            k = np.arange(len(starts))
            pick = starts[(k % every == 0) & (starts >= i0) & (starts < i1)]
            kept: list[float] = []
            for i in pick[::-1]:  # a short session (a half day) would crowd the next date
                if not kept or kept[-1] - i >= 0.6 * spacing:
                    kept.append(float(i))
            return [(spacing, kept[::-1])]
        # Minute of the New York day of each bar in view; the UTC offset is the same within
        # a session (clocks change on weekends), so one lookup per session in view.
        first = max(0, int(np.searchsorted(starts, i0, side="right")) - 1)
        bounds = list(starts[first:]) + [len(ts)]
        out: list[float] = []
        for s, e in zip(bounds, bounds[1:], strict=False):
            a, b = max(int(s), i0), min(int(e), i1)
            if a >= b:
                if s >= i1:
                    break
                continue
            off = datetime.fromtimestamp(int(ts[a]), EXCHANGE_TZ).utcoffset()
            secs = int(off.total_seconds()) if off is not None else 0
            minute = ((ts[a:b] + secs) // 60) % 1440
            out += [float(a + j) for j in np.flatnonzero(minute % int(spacing) == 0)]
        return [(spacing, out)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        """New York time of each tick's bar; the date instead when a session starts between
        the previous tick position and this one, so each day is named once, at its first
        tick ("14:40, Dec 01, 10:00"), whichever tick level pyqtgraph asks about."""
        ts = self._chart.timestamps()
        starts = self._chart.session_starts()
        if spacing < getattr(self, "_major", 0.0):
            return [""] * len(values)  # minor ticks: lines only, so no label is said twice
        out = []
        for v in values:
            i = int(round(v))
            if not 0 <= i < len(ts):
                out.append("")
                continue
            back = i - spacing_bars(spacing, i)
            new_day = spacing >= 390 or i == 0 or bool(
                np.searchsorted(starts, i, side="right") > np.searchsorted(starts, back,
                                                                          side="right"))
            t = datetime.fromtimestamp(int(ts[i]), EXCHANGE_TZ)
            out.append(t.strftime("%b %d") if new_day else t.strftime("%H:%M"))
        return out


def buckets(n: int, x0: float, x1: float, max_count: int) -> tuple[int, int, int]:
    """The visible bars [i0, i1) and how many bars each drawn bucket merges (k >= 1).

    Buckets start at multiples of k, so panning does not make merged candles shimmer."""
    i0 = max(0, int(math.floor(x0)))
    i1 = min(n, int(math.ceil(x1)) + 1)
    if i1 <= i0:
        return 0, 0, 1
    k = max(1, int(math.ceil((i1 - i0) / max(1, max_count))))
    return (i0 // k) * k, i1, k


def merge_ohlcv(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray,
                i0: int, i1: int, k: int) -> tuple[np.ndarray, ...]:
    """Bars [i0, i1) merged k at a time: (x centre, open, high, low, close, volume)."""
    starts = np.arange(i0, i1, k)
    if k == 1:
        return (starts.astype(float), o[i0:i1], h[i0:i1], lo[i0:i1], c[i0:i1], v[i0:i1])
    rel = starts - i0
    ends = np.minimum(starts + k, i1) - 1
    return ((starts + ends) / 2.0, o[starts], np.maximum.reduceat(h[i0:i1], rel),
            np.minimum.reduceat(lo[i0:i1], rel), c[ends], np.add.reduceat(v[i0:i1], rel))


class _BarsItem(pg.GraphicsObject):
    """Candles or volume bars of the visible range, as whole-pixel rectangles and lines made
    again only when the data, the visible range or the view's scale changes (a crosshair move
    repaints them as they are). One item for the chart's life."""

    def __init__(self, chart: PriceChart, volume: bool) -> None:
        super().__init__()
        self._chart = chart
        self._volume = volume
        self._parts: list[tuple[QPen, QBrush, list[QRect], list[QLine]]] = []
        self._key: tuple = ()
        self._bounds = QRectF()

    def data_changed(self) -> None:
        self.prepareGeometryChange()
        self._bounds = self._chart.data_rect(self._volume)
        self._key = ()
        self.informViewBoundsChanged()  # the view box re-runs its auto-range (pyqtgraph 0.13)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(self._bounds)

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange=None):  # noqa: N802, N803
        vb = self.getViewBox()
        if self._volume and ax == 1 and vb is not None and orthoRange is not None \
                and orthoRange[0] is not None:
            # The pane's height follows the bars as drawn: k bars merged add their volumes.
            i0, i1, k = buckets(self._chart.count, orthoRange[0], orthoRange[1],
                                max(1, int(vb.width() / MIN_BUCKET_PX)))
            if i1 > i0:
                return (0.0, max(1.0, float(self._chart.merged(i0, i1, k)[5].max())))
        return self._chart.visible_bounds(ax, orthoRange, self._volume)

    def _rebuild(self, key: tuple, i0: int, i1: int, k: int, sx: float, dx: float,
                 sy: float, dy: float) -> None:
        """Whole-pixel rectangles and lines in device coordinates (the raster engine fills
        those directly; scaled ones go through its path filler)."""
        x, o, h, lo, c, v = self._chart.merged(i0, i1, k)
        xs = np.rint(np.asarray(x, dtype=float) * sx + dx).astype(np.int64)
        half = max(0, int(round(0.35 * k * abs(sx))))
        up = c >= o
        parts: list[tuple[QPen, QBrush, list[QRect], list[QLine]]] = []
        for rising in (True, False):
            sel = up if rising else ~up
            if not sel.any():
                continue
            if self._volume:
                top = np.rint(np.asarray(v[sel], dtype=float) * sy + dy).astype(np.int64)
                base = int(round(dy))
                rects = [QRect(a - half, min(t, base), 2 * half + 1, abs(base - t) + 1)
                         for a, t in zip(xs[sel].tolist(), top.tolist(), strict=True)]
                parts.append((QPen(Qt.PenStyle.NoPen),
                              QBrush(QColor(VOLUME_UP if rising else VOLUME_DOWN)), rects, []))
                continue
            colour = QColor(UP_COLOR if rising else DOWN_COLOR)
            ys = [np.rint(np.asarray(a[sel], dtype=float) * sy + dy).astype(np.int64).tolist()
                  for a in (lo, h, o, c)]
            cx = xs[sel].tolist()
            lines = [QLine(a, yl, a, yh) for a, yl, yh in zip(cx, ys[0], ys[1], strict=True)]
            rects = [QRect(a - half, min(yo, yc), 2 * half + 1, abs(yo - yc) + 1)
                     for a, yo, yc in zip(cx, ys[2], ys[3], strict=True)]
            parts.append((QPen(colour, 0), QBrush(colour), rects, lines))
        self._parts, self._key = parts, key

    def paint(self, p: QPainter, *args) -> None:
        vb = self.getViewBox()
        n = self._chart.count
        if vb is None or n == 0:
            return
        (x0, x1), _ = vb.viewRange()
        max_count = max(1, int(vb.width() / MIN_BUCKET_PX))
        i0, i1, k = buckets(n, x0, x1, max_count)
        if i1 <= i0:
            return
        t = p.transform()  # data -> device: a scale and a shift (the view never rotates)
        key = (self._chart.version, i0, i1, k, t.m11(), t.dx(), t.m22(), t.dy())
        if key != self._key:
            self._rebuild(key, i0, i1, k, t.m11(), t.dx(), t.m22(), t.dy())
        p.save()
        p.resetTransform()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for pen, brush, rects, lines in self._parts:
            p.setPen(pen)
            if lines:
                p.drawLines(lines)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(brush)
            p.drawRects(rects)
        p.restore()


class PriceChart(pg.GraphicsLayoutWidget):
    """One ticker's bars: the price (line or candles) with optional SMA lines and fill markers
    above a volume pane sharing its x axis; a legend row above both."""

    userMoved = Signal()

    def __init__(self, parent: QWidget | None = None, sma_windows: Iterable[int] = ()) -> None:
        self._alloc(1024)
        self._n = 0
        self._version = 0
        self._starts = np.zeros(0, dtype=np.int64)
        self._starts_at = -1
        super().__init__(parent)
        self.setBackground("w")
        self.setObjectName("priceChart")
        self._follow = True
        self._dirty = False
        self._draws = 0
        self._last_draw = 0.0
        self._markers: list[tuple[int, str, float]] = []  # (epoch, side, price)
        self._sma_windows: tuple[int, ...] = ()
        self._sma_values: list[np.ndarray] = []
        self._smas = MovingAverages()
        self._lines_at: tuple = ()  # what the lines were last made from (version, view)
        self._scale = 1.0
        self._marker_size = 16
        self._candles = False
        self._cross_at: int | None = None  # bar index under the crosshair, None = hidden
        self._hold_pos: QPointF | None = None
        self.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.ci.layout.setVerticalSpacing(0)

        # Row 0: the legend (or the crosshair's readout), outside the plot.
        self._legend = pg.LabelItem(justify="left")
        self.addItem(self._legend, row=0, col=0)
        # Row 1: prices. Row 2: volume, with the New York time axis at the very bottom.
        self._plot = self.addPlot(row=1, col=0, axisItems={"right": PriceAxis("right")})
        axis = ExchangeTimeAxis(self)
        self._vol = self.addPlot(row=2, col=0, axisItems={"bottom": axis})
        self.ci.layout.setRowStretchFactor(1, 4)
        self.ci.layout.setRowStretchFactor(2, 1)
        self._vol.setXLink(self._plot)
        item = self._plot
        for plot in (self._plot, self._vol):
            style_plot(plot)
            plot.getAxis("right").setWidth(64)
        item.hideAxis("bottom")
        item.showGrid(x=False, y=True)
        self._vol.showGrid(x=True, y=False)
        for axis_item in (item.getAxis("right"), self._vol.getAxis("bottom")):
            # Opaque grid lines: the raster engine blends translucent ones pixel by pixel,
            # about 1 ms per axis per frame at 800x480, more than the price line itself.
            axis_item.setTickPen(pg.mkPen(GRID_COLOR))
            axis_item.setStyle(tickAlpha=255)
            axis_item.setZValue(-1)  # under the bars and lines (the views paint no background)
        # The volume pane's right axis only keeps the panes' x aligned: no values, no ticks.
        self._vol.getAxis("right").setStyle(showValues=False)
        self._vol.getAxis("right").setTickPen(pg.mkPen(None))
        self._vol.getViewBox().setMouseEnabled(x=True, y=False)
        self._vol.getViewBox().setAutoVisible(y=True)
        self._vol.getViewBox().enableAutoRange(axis="y")
        self._separators: list[pg.InfiniteLine] = []  # in use: the first of the pool
        self._separator_pool: list[pg.InfiniteLine] = []  # made once, moved, never removed
        self._separator_at: tuple[int, ...] = ()
        self._want_days = 1  # sessions shown while following (today's), 0: ``_width`` bars
        self._width = 0.0  # bars in view while following (0: not chosen yet)
        self._last_tag = pg.InfiniteLine(
            angle=0, movable=False, pen=pg.mkPen("#0a2f6b", width=1, style=Qt.PenStyle.DotLine),
            label="{value:.2f}", labelOpts={"position": 1.0, "color": "#ffffff",
                                             "fill": "#0a2f6b", "anchors": [(1, 0.5), (1, 0.5)]})
        self._last_tag.setZValue(20)
        item.addItem(self._last_tag, ignoreBounds=True)
        self._last_tag.hide()
        # Curves get only the bars in view, already thinned to the pixel columns
        # (``_draw_lines``), so pyqtgraph neither clips nor downsamples 100,000 points.
        self._price = pg.PlotCurveItem(pen=pg.mkPen(**PRICE_PEN), skipFiniteCheck=True)
        item.addItem(self._price)
        self._candle_item = _BarsItem(self, volume=False)
        self._candle_item.hide()
        item.addItem(self._candle_item)
        self._volume_item = _BarsItem(self, volume=True)
        self._vol.addItem(self._volume_item)
        self._indicators: list[pg.PlotCurveItem] = []
        self._buys = pg.ScatterPlotItem(symbol="t1", size=16, brush=BUY_BRUSH, pen=pg.mkPen("w"))
        self._sells = pg.ScatterPlotItem(symbol="t", size=16, brush=SELL_BRUSH, pen=pg.mkPen("w"))
        self._buys.setZValue(10)
        self._sells.setZValue(10)
        item.addItem(self._buys)
        item.addItem(self._sells)
        # The crosshair: two lines made once, shown while a finger is held on the chart.
        cross_pen = pg.mkPen("#3d4654", width=1, style=Qt.PenStyle.DashLine)
        self._cross_v = pg.InfiniteLine(angle=90, movable=False, pen=cross_pen)
        self._cross_h = pg.InfiniteLine(angle=0, movable=False, pen=cross_pen)
        self._cross_v2 = pg.InfiniteLine(angle=90, movable=False, pen=cross_pen)
        for line, plot in ((self._cross_v, item), (self._cross_h, item),
                           (self._cross_v2, self._vol)):
            line.setZValue(30)
            line.hide()
            plot.addItem(line, ignoreBounds=True)
        self._hold_timer = QTimer(self)
        self._hold_timer.setSingleShot(True)
        self._hold_timer.setInterval(HOLD_MS)
        self._hold_timer.timeout.connect(self._start_crosshair)
        vb = item.getViewBox()
        vb.setMouseEnabled(x=True, y=False)
        vb.setAutoVisible(y=True)
        vb.enableAutoRange(axis="y")
        vb.sigRangeChangedManually.connect(self._on_manual)
        # The date of the session at the left edge stays readable when its separator line
        # has scrolled out of view (its own label would be cut by the edge).
        self._edge_date = pg.TextItem("", color="#1b2330", fill=(238, 241, 245, 230),
                                      anchor=(0, 0))
        self._edge_date.setZValue(25)
        self._edge_date.hide()
        item.addItem(self._edge_date, ignoreBounds=True)
        vb.sigRangeChanged.connect(self._place_dates)
        vb.sigXRangeChanged.connect(self._draw_lines)
        vb.sigResized.connect(self._draw_lines)
        self._vol.getViewBox().sigRangeChangedManually.connect(self._on_manual)
        self.viewport().grabGesture(Qt.GestureType.PinchGesture)
        self._timer = QTimer(self)
        self._timer.setInterval(int(1000 / MAX_FPS))
        self._timer.timeout.connect(self._flush)
        self._timer.start()
        self._fit_legend_row()
        self.set_indicators(sma_windows)

    # --- storage -------------------------------------------------------------------------
    def _alloc(self, cap: int) -> None:
        self._ts = np.zeros(cap, dtype=np.int64)
        self._close = np.zeros(cap, dtype=float)
        # Open, high, low, volume: float32 is plenty for a picture and halves the memory.
        self._o = np.zeros(cap, dtype=np.float32)
        self._h = np.zeros(cap, dtype=np.float32)
        self._l = np.zeros(cap, dtype=np.float32)
        self._v = np.zeros(cap, dtype=np.float32)

    def _grow(self) -> None:
        cap = len(self._ts) * 2
        for name in ("_ts", "_close", "_o", "_h", "_l", "_v"):
            setattr(self, name, np.resize(getattr(self, name), cap))

    # --- data ----------------------------------------------------------------------------
    def getPlotItem(self) -> pg.PlotItem:  # noqa: N802 - pyqtgraph's name, as PlotWidget
        """The price plot (the volume pane is ``volume_plot``)."""
        return self._plot

    @property
    def volume_plot(self) -> pg.PlotItem:
        return self._vol

    @property
    def version(self) -> int:
        """Changes whenever the bars change (the candle and volume items' cache key)."""
        return self._version

    def timestamps(self) -> np.ndarray:
        return self._ts[: self._n]

    def closes(self) -> np.ndarray:
        return self._close[: self._n]

    def volumes(self) -> np.ndarray:
        return self._v[: self._n]

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

    def merged(self, i0: int, i1: int, k: int) -> tuple[np.ndarray, ...]:
        return merge_ohlcv(self._o, self._h, self._l, self._close, self._v, i0, i1, k)

    def data_rect(self, volume: bool) -> QRectF:
        """Everything the candles (or volume bars) could cover, in data coordinates."""
        n = self._n
        if n == 0:
            return QRectF()
        if volume:
            top = float(self._v[:n].max())
            return QRectF(-1.0, 0.0, n + 1.0, max(top, 1.0))
        lo, hi = float(self._l[:n].min()), float(self._h[:n].max())
        return QRectF(-1.0, lo, n + 1.0, max(hi - lo, 1e-6))

    def visible_bounds(self, ax: int, ortho: tuple[float, float] | None,
                       volume: bool) -> tuple[float, float] | None:
        """Data bounds for auto-range: x over all bars; y over the bars in ``ortho``."""
        n = self._n
        if n == 0:
            return None
        if ax == 0:
            return (0.0, float(n - 1))
        i0, i1 = 0, n
        if ortho is not None and ortho[0] is not None:
            i0 = max(0, int(math.floor(ortho[0])))
            i1 = min(n, int(math.ceil(ortho[1])) + 1)
        if i1 <= i0:
            return None
        if volume:
            return (0.0, max(1.0, float(self._v[i0:i1].max())))
        return (float(self._l[i0:i1].min()), float(self._h[i0:i1].max()))

    def set_indicators(self, windows: Iterable[int]) -> None:
        """SMA lines to draw, e.g. (20, 50) for the SMA crossover plugin."""
        item = self._plot
        for c in self._indicators:
            item.removeItem(c)
        self._indicators = []
        self._sma_windows = tuple(int(w) for w in windows if int(w) > 1)
        self._smas.set_windows(self._sma_windows)
        self._sma_values = []
        self._lines_at = ()
        for i in range(len(self._sma_windows)):
            c = pg.PlotCurveItem(pen=pg.mkPen(INDICATOR_COLORS[i % len(INDICATOR_COLORS)],
                                              width=max(1.5, 2 * self._scale)),
                                 connect="finite")
            item.addItem(c)
            self._indicators.append(c)
        self._show_legend()
        self._dirty = True

    def set_series(self, ts: np.ndarray | list[int], close: np.ndarray | list[float],
                   ohlv: np.ndarray | None = None) -> None:
        """Replace the whole series (oldest first). ``ohlv``: an (n, 4) array of open, high,
        low and volume; without it each bar is flat at its close with no volume."""
        ts = np.asarray(ts, dtype=np.int64)
        close = np.asarray(close, dtype=float)
        n = len(ts)
        self._alloc(max(1024, int(n * 1.5)))
        self._n = n
        self._ts[:n] = ts
        self._close[:n] = close
        if ohlv is not None and len(ohlv) == n and n:
            ohlv = np.asarray(ohlv, dtype=float)
            self._o[:n], self._h[:n], self._l[:n], self._v[:n] = ohlv.T
        else:
            self._o[:n] = self._h[:n] = self._l[:n] = close
        self._follow = True
        self._want_days = 1
        self._smas.invalidate(0)
        self._touch()

    def append(self, ts: int, close: float, o: float | None = None, h: float | None = None,
               lo: float | None = None, v: float = 0.0) -> None:
        """Add one bar (or correct the newest one if ``ts`` repeats); older bars are ignored."""
        n = self._n
        if n and ts < self._ts[n - 1]:
            return
        if not (n and ts == self._ts[n - 1]):
            if n == len(self._ts):
                self._grow()
            self._ts[n] = ts
            self._n = n = n + 1
        i = n - 1
        self._smas.invalidate(i)
        self._close[i] = close
        self._o[i] = close if o is None else o
        self._h[i] = max(close, self._o[i]) if h is None else h
        self._l[i] = min(close, self._o[i]) if lo is None else lo
        self._v[i] = v or 0.0
        fresh = self._starts_at == self._version
        self._touch()
        if fresh:  # session starts kept up to date by the appended bar, not found again
            if i == 0:  # the first bar of an empty chart starts its first session
                self._starts = np.zeros(1, dtype=np.int64)
            elif self._ts[i] - self._ts[i - 1] > SESSION_GAP and self._starts[-1] != i:
                self._starts = np.append(self._starts, i)
            self._starts_at = self._version
        # The first bar after a quiet spell is drawn at once; more within the same frame
        # interval wait for the timer (at most MAX_FPS draws a second either way).
        if time.monotonic() - self._last_draw >= 1.0 / MAX_FPS:
            self._flush()

    def _touch(self) -> None:
        self._version += 1
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

    def set_candles(self, on: bool) -> None:
        """Candlesticks (True) or the closing-price line (False)."""
        self._candles = bool(on)
        self._candle_item.setVisible(self._candles)
        self._price.setVisible(not self._candles)
        self._show_legend()
        self._dirty = True

    @property
    def candles(self) -> bool:
        return self._candles

    def session_starts(self) -> np.ndarray:
        """Index of each session's first bar (cached until the bars change)."""
        if self._starts_at != self._version:
            self._starts = session_starts(self.timestamps())
            self._starts_at = self._version
        return self._starts

    def separator_count(self) -> int:
        return len(self._separators)

    def separator_labels(self) -> list[str]:
        return [line.label.toPlainText() for line in self._separators]

    def _draw_separators(self) -> None:
        """A dashed line at each session's first bar (the newest ``MAX_SEPARATORS``), its
        date at the top. The lines are made once and moved: a new session relabels them.
        Made again each session, the old ones (pyqtgraph items in reference cycles, each a
        QTextDocument and a few dozen signals) waited as garbage for Python's rare full
        collection: the docked chart grew about 1 MB a session (issue 15)."""
        starts = self.session_starts()[1:][-MAX_SEPARATORS:]
        key = tuple(int(i) for i in starts)
        if key == self._separator_at:
            return
        pool = self._separator_pool
        while len(pool) < len(key):
            pool.append(self._new_separator())
        ts = self.timestamps()
        for line, i in zip(pool, key, strict=False):
            day = datetime.fromtimestamp(int(ts[i]), EXCHANGE_TZ).strftime("%a %b %d")
            label = line.label
            if label.format != day:
                label.format = day
                label.setText(day)  # also while hidden (pyqtgraph formats visible ones only)
            line.setValue(i - 0.5)
            line.show()
        for line in pool[len(key):]:
            line.hide()
        self._separators = pool[:len(key)]
        self._separator_at = key
        self._place_dates()

    def _new_separator(self) -> pg.InfiniteLine:
        """One session line for the pool. The date sits just right of its line, at the top of
        the plot, on a light background so the grid does not cross it; the legend is outside
        the plot."""
        line = pg.InfiniteLine(pos=0.0, angle=90, movable=False, pen=pg.mkPen(**SEPARATOR_PEN),
                               label="", labelOpts={"position": 0.96, "color": "#1b2330",
                                                    "fill": (238, 241, 245, 230),
                                                    "anchors": [(0, 0), (0, 0)]})
        line.label.setFont(self._label_font())
        self._plot.addItem(line, ignoreBounds=True)
        return line

    def _place_dates(self, *args: object) -> None:
        """Each separator's date shows only when its line is in view; the session at the
        left edge gets its date pinned to the edge instead."""
        n = self._n
        if n == 0:
            self._edge_date.hide()
            return
        (x0, x1), (y0, y1) = self._plot.getViewBox().viewRange()
        px_per_bar = self._plot.getViewBox().width() / max(1e-9, x1 - x0)
        taken = math.inf  # left end (px from x0) of the newer date already placed
        for line in reversed(self._separators):  # newest first: it wins a crowded spot
            at = (line.value() - x0) * px_per_bar
            wide = line.label.textItem.boundingRect().width()
            # The date left of its line when it would run past the right edge.
            side = 1 if (x1 - line.value()) * px_per_bar < wide + 4 else 0
            left = at - wide if side else at
            # A short session (a half day, 5D on a narrow plot): two dates would overlap.
            shown = x0 <= line.value() <= x1 and left + wide + 4 <= taken
            line.label.setVisible(shown)
            if not shown:
                continue
            taken = left
            if line.label.anchors[0] != (side, 0):
                line.label.anchors = [(side, 0), (side, 0)]
                line.label.updatePosition()
        starts = self.session_starts()
        i = int(np.searchsorted(starts, max(0.0, x0 + 0.5), side="right")) - 1
        first = int(starts[i]) if i >= 0 and len(starts) else 0
        nxt = int(starts[i + 1]) if i + 1 < len(starts) else None
        crowded = nxt is not None and (nxt - x0) * px_per_bar < 110 * self._scale
        if first - 0.5 >= x0 or crowded:  # its own line is in view, or the next date is near
            self._edge_date.hide()
            return
        day = datetime.fromtimestamp(int(self._ts[first]), EXCHANGE_TZ).strftime("%a %b %d")
        if self._edge_date.textItem.toPlainText() != day:
            self._edge_date.setText(day)
        self._edge_date.setPos(x0, y0 + 0.96 * (y1 - y0))
        self._edge_date.show()

    def edge_date(self) -> str:
        """The date pinned at the left edge ('' when none is)."""
        return self._edge_date.textItem.toPlainText() if self._edge_date.isVisible() else ""

    def _label_font(self) -> QFont:
        font = QFont(self.font())
        font.setPixelSize(int(round(12 * self._scale)))
        return font

    def reset(self) -> None:
        self.set_series([], [])
        self._markers = []
        self._hide_crosshair()

    def apply_scale(self, scale: float) -> None:
        """Line widths, markers, axis and legend text for the screen's scale (1.0 at 800x480)."""
        self._price.setPen(pg.mkPen(PRICE_PEN["color"], width=max(1.5, 2 * scale)))
        for i, c in enumerate(self._indicators):
            c.setPen(pg.mkPen(INDICATOR_COLORS[i % len(INDICATOR_COLORS)],
                              width=max(1.5, 2 * scale)))
        self._marker_size = int(16 * scale)
        self._buys.setSize(self._marker_size)
        self._sells.setSize(self._marker_size)
        self._scale = scale
        font = self.font()
        font.setPixelSize(int(round(13 * scale)))
        for plot in (self._plot, self._vol):
            plot.getAxis("right").setWidth(int(round(64 * scale)))
            for name in ("right", "bottom"):
                plot.getAxis(name).setStyle(tickFont=font)
        self._vol.getAxis("bottom").setHeight(int(round(26 * scale)))
        label_font = self._label_font()
        for text in [self._last_tag.label, self._edge_date] + [s.label for s in self._separator_pool]:
            text.setFont(label_font)
        self._fit_legend_row()
        self._show_legend()

    # --- legend and crosshair -----------------------------------------------------------
    def _legend_size(self) -> str:
        return f"{max(9, round(10 * self._scale))}pt"

    def _fit_legend_row(self) -> None:
        """Two lines of legend, whatever it shows (the swatches and a hint, or the
        crosshair's values): the plot never moves under the finger."""
        px = max(9, round(10 * self._scale)) * 96 / 72
        h = int(px * 1.35 * 2 + 6)
        self._legend.setMinimumHeight(h)
        self._legend.setMaximumHeight(h)

    @staticmethod
    def _swatch(colour: str, text: str) -> str:
        return f'<span style="color:{colour}">\u2501</span>&nbsp;{text}'

    def _show_legend(self) -> None:
        parts = [self._swatch(PRICE_PEN["color"], "candles" if self._candles else "price")]
        parts += [self._swatch(INDICATOR_COLORS[i % len(INDICATOR_COLORS)], f"SMA {w}")
                  for i, w in enumerate(self._sma_windows)]
        parts.append(f'<span style="color:{BUY_BRUSH}">\u25b2</span>&nbsp;buy '
                     f'<span style="color:{SELL_BRUSH}">\u25bc</span>&nbsp;sell')
        hint = ('<span style="color:#3d4654">hold a finger on the chart for its time, '
                'open/high/low/close and values</span>')
        self._legend.setText("&nbsp;&nbsp; ".join(parts) + "<br>" + hint, color="#0d1117",
                             size=self._legend_size())

    def legend_text(self) -> str:
        return str(self._legend.text)

    def crosshair_index(self) -> int | None:
        """The bar under the crosshair, None when it is hidden."""
        return self._cross_at

    def crosshair_at(self, x: float, y: float | None = None) -> None:
        """Show the crosshair on the bar nearest ``x`` (data coordinates) and its values in
        the legend row: time, open/high/low/close, volume and each indicator."""
        n = self._n
        if n == 0:
            return
        i = min(n - 1, max(0, int(round(x))))
        self._cross_at = i
        self._cross_v.setValue(i)
        self._cross_v2.setValue(i)
        self._cross_h.setValue(float(self._close[i]) if y is None else y)
        for line in (self._cross_v, self._cross_h, self._cross_v2):
            line.show()
        when = datetime.fromtimestamp(int(self._ts[i]), EXCHANGE_TZ).strftime("%a %b %d %H:%M")
        vol = float(self._v[i])
        first = [f"<b>{when}</b>", f"<b>C {self._close[i]:,.2f}</b>", f"Vol {vol:,.0f}"]
        second = [f"O {self._o[i]:,.2f}", f"H {self._h[i]:,.2f}", f"L {self._l[i]:,.2f}"]
        for k, (w, values) in enumerate(zip(self._sma_windows, self._sma_values, strict=False)):
            if i < len(values) and math.isfinite(values[i]):
                colour = INDICATOR_COLORS[k % len(INDICATOR_COLORS)]
                second.append(f'<span style="color:{colour}">SMA {w} {values[i]:,.2f}</span>')
        self._legend.setText("&nbsp;&nbsp; ".join(first) + "<br>" + "&nbsp;&nbsp; ".join(second),
                             color="#0d1117", size=self._legend_size())

    def _hide_crosshair(self) -> None:
        if self._cross_at is None:
            return
        self._cross_at = None
        for line in (self._cross_v, self._cross_h, self._cross_v2):
            line.hide()
        self._show_legend()

    def _data_x(self, pos: QPointF) -> tuple[float, float] | None:
        vb = self._plot.getViewBox()
        scene = self.mapToScene(pos.toPoint())
        if not (vb.sceneBoundingRect().contains(scene)
                or self._vol.getViewBox().sceneBoundingRect().contains(scene)):
            return None
        p = vb.mapSceneToView(scene)
        return p.x(), p.y()

    def _start_crosshair(self) -> None:
        if self._hold_pos is None:
            return
        at = self._data_x(self._hold_pos)
        if at is not None:
            self.crosshair_at(*at)

    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton:
            self._hold_pos = ev.position()
            self._hold_timer.start()
        super().mousePressEvent(ev)

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        if self._cross_at is not None:
            at = self._data_x(ev.position())
            if at is not None:
                self.crosshair_at(*at)
            ev.accept()
            return  # while the crosshair shows, a moving finger moves it, not the chart
        if self._hold_pos is not None and (ev.position() - self._hold_pos).manhattanLength() \
                > HOLD_SLOP:
            self._hold_timer.stop()
            self._hold_pos = None
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        self._hold_timer.stop()
        self._hold_pos = None
        self._hide_crosshair()
        super().mouseReleaseEvent(ev)

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
        vb = self._plot.getViewBox()
        (x0, x1), _ = vb.viewRange()
        width = max(10.0, min((x1 - x0) * factor, self._n + 10.0))
        self._want_days = 0
        if self._follow:
            # As the next draw lays it out: ``_width`` bars, then the right margin, the
            # whole view ``width`` wide (it grew by the margin at the next bar before).
            bars = width
            for _ in range(4):
                bars = max(5.0, width - self._right_pad(bars))
            self._width = bars
            vb.setXRange(self._n - bars, self._n - bars + width, padding=0)
        else:
            self._width = width
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
        y = self._close[:n]
        self._candle_item.data_changed()
        self._volume_item.data_changed()
        self._draw_markers()
        self._draw_separators()
        vb = self._plot.getViewBox()
        if n:
            last = float(y[-1])
            # Shown before its value is set: a hidden line's label does not update its text.
            self._last_tag.show()
            self._last_tag.setValue(last)
            self._last_tag.label.setFormat(f"{last:,.2f}")  # the text itself, no placeholder
        else:
            self._last_tag.hide()
        if self._follow and n:
            if self._want_days:
                starts = self.session_starts()
                first = int(starts[max(0, len(starts) - self._want_days)])
                # A session just begun still shows a sensible width (at least an hour).
                first = min(first, max(0, n - 60))
                # Kept: "1D" goes on showing the whole session as it grows (it stayed at the
                # width of the moment it was pressed); a zoom chooses a width instead.
                width = n - first + 1
            else:
                width = self._width or min(n, DEFAULT_WINDOW) + 2
            self._width = width
            pad = self._right_pad(width)
            vb.setLimits(xMin=-pad, xMax=n + pad, minXRange=10)
            vb.setXRange(n - width, n + pad, padding=0)
            self._draw_lines()  # the same view (no range signal) still needs the new bar
            # Both panes' heights follow the bars in view now: pyqtgraph otherwise does it
            # while painting, and the changed range paints the whole chart a second time.
            vb.updateAutoRange()
            self._vol.getViewBox().updateAutoRange()
        elif n:
            span = (vb.viewRange()[0][1] - vb.viewRange()[0][0])
            vb.setLimits(xMin=-right_pad(span), xMax=n + self._right_pad(span), minXRange=10)
            self._draw_lines()
        else:
            self._draw_lines()
        self._draws += 1
        self._last_draw = time.monotonic()

    def _right_pad(self, width: float) -> float:
        """``right_pad`` for this plot's width and the last-price tag's text."""
        tag = self._last_tag.label.textItem.boundingRect().width() if self._n else 0.0
        return right_pad(width, tag, self._plot.getViewBox().width())

    def _draw_lines(self, *args: object) -> None:
        """The price and indicator lines for the bars in view, one bucket of bars per line
        width of pixel columns (its high and low), made again only when the bars or the view
        changed."""
        vb = self._plot.getViewBox()
        (x0, x1), _ = vb.viewRange()
        # One bucket per line width: a 2 px line shows nothing finer than 2 px columns.
        width = max(1.0, self._price.opts["pen"].widthF())
        i0, i1, k = buckets(self._n, x0, x1, max(1, int(vb.width() / width)))
        key = (self._version, i0, i1, k, self._sma_windows)
        if key == self._lines_at:
            return
        self._lines_at = key
        self._sma_values = self._smas.update(self._close[:self._n])
        x, y = peak_decimate(self._close, i0, i1, k)
        self._price.setData(x, y, skipFiniteCheck=True)
        for values, c in zip(self._sma_values, self._indicators, strict=False):
            c.setData(*peak_decimate(values, i0, i1, k), connect="finite")

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
