"""The Performance screen's widgets: the curves' pyqtgraph chart (dates, % of each curve's
start) beside the QML title bar and list. Imported when the screen first opens, so the window's
start does not wait for pyqtgraph."""

from __future__ import annotations

from datetime import UTC, datetime

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtQml import QQmlEngine
from PySide6.QtWidgets import QWidget

from app.ui.chart import style_plot
from app.ui.performance import Curve, PerformanceViewModel, day_epoch
from app.ui.qml import load_page
from app.ui.split_page import SplitPage

DAY = 86_400
# Day spacings the date axis may label (about a week, a fortnight, a month, a quarter...).
DAY_STEPS = (1, 2, 7, 14, 28, 91, 182, 364, 728)


class DayAxis(pg.AxisItem):
    """Dates at noon UTC as 'Feb 05' (or 'Feb 2024' when labels are months apart), spaced so
    labels never collide."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803
        days = max(1.0, (maxVal - minVal) / DAY)
        want = max(2, int(size / 80))  # a label every ~80 px
        step = next((d for d in DAY_STEPS if days / d <= want), DAY_STEPS[-1])
        return [(float(step * DAY), float(DAY / 2))]

    def tickStrings(self, values, scale, spacing):  # noqa: N802
        fmt_ = "%b %Y" if spacing >= 91 * DAY else "%b %d"
        return [datetime.fromtimestamp(v, UTC).strftime(fmt_) for v in values]


class PercentAxis(pg.AxisItem):
    def tickStrings(self, values, scale, spacing):  # noqa: N802
        return [f"{v:+g}%" if v else "0%" for v in values]


class PerformanceChart(pg.PlotWidget):
    """The curves in % of their start, a date axis, a zero line; lines reused between loads."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w",
                         axisItems={"bottom": DayAxis("bottom"), "right": PercentAxis("right")})
        self.setObjectName("performanceChart")
        item = self.getPlotItem()
        style_plot(item)
        item.showGrid(x=True, y=True, alpha=0.25)
        item.getViewBox().setMouseEnabled(x=False, y=False)
        self._zero = pg.InfiniteLine(pos=0, angle=0, movable=False,
                                     pen=pg.mkPen("#6b7686", width=1,
                                                  style=Qt.PenStyle.DashLine))
        item.addItem(self._zero, ignoreBounds=True)
        self._lines: list[pg.PlotDataItem] = []
        self._shown: list[str] = []
        self._scale = 1.0

    def set_curves(self, curves: list[Curve]) -> None:
        item = self.getPlotItem()
        while len(self._lines) < len(curves):
            line = item.plot(symbol="o", symbolSize=5)
            self._lines.append(line)
        self._shown = []
        for line, c in zip(self._lines, curves, strict=False):
            width = max(2.0, (3.0 if c.key == "account" else 2.0) * self._scale)
            style = Qt.PenStyle.DashLine if c.key == "bench" else Qt.PenStyle.SolidLine
            line.setPen(pg.mkPen(c.colour, width=width, style=style))
            line.setSymbolBrush(pg.mkBrush(c.colour))
            line.setSymbolPen(pg.mkPen(c.colour))
            line.setData([day_epoch(d) for d in c.days], c.pct)
            line.show()
            self._shown.append(c.key)
        for line in self._lines[len(curves):]:
            line.setData([], [])
            line.hide()
        # No curve (no snapshots yet, a range with none): no axes counting an empty range's
        # +0.1 ... +0.9 %; the page's message says why it is empty.
        for name in ("right", "bottom"):
            item.showAxis(name, bool(curves))
        self._zero.setVisible(bool(curves))
        item.enableAutoRange()

    def shown_keys(self) -> list[str]:
        return list(self._shown)

    def apply_scale(self, scale: float) -> None:
        self._scale = scale
        font = self.font()
        font.setPixelSize(int(round(13 * scale)))
        item = self.getPlotItem()
        for name in ("right", "bottom"):
            item.getAxis(name).setStyle(tickFont=font)
        item.getAxis("right").setWidth(int(round(56 * scale)))
        # Room for the dates under the plot at this font: pyqtgraph's own height, sized for
        # its default font, cut their lower half at 1920x1080.
        item.getAxis("bottom").setHeight(int(QFontMetrics(font).height() + round(14 * scale)))

    def date_labels_fit(self) -> bool:
        """The date axis is tall enough for its labels (tests)."""
        axis = self.getPlotItem().getAxis("bottom")
        font = axis.style.get("tickFont") or self.font()
        return axis.height() >= QFontMetrics(font).height() + 8


class PerformancePage(SplitPage):
    """[QML title bar: Back, range buttons over the chart] beside [QML list of the curves];
    in portrait the list goes under the chart."""

    def __init__(self, engine: QQmlEngine, vm: PerformanceViewModel,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("performancePage")
        self.vm = vm
        self.title = load_page(engine, "PerformanceTitle.qml", {"perf": vm}, self)
        self.side = load_page(engine, "PerformanceSide.qml", {"perf": vm}, self)
        self.chart = PerformanceChart(self)
        vm.curvesChanged.connect(lambda: self.chart.set_curves(vm.curves))
        if vm.curves:  # read before this page was first built
            self.chart.set_curves(vm.curves)
        self._lay_out(self.title, self.chart, self.side, self.chart.apply_scale)
