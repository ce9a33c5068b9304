"""The layout the Detail and Performance screens share: [QML title bar over a chart] beside a
QML side panel; on an upright screen the panel goes under the chart, full width. Sizes follow
the theme's scale."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QBoxLayout, QVBoxLayout, QWidget

from app.ui.theme import theme

QWIDGETSIZE_MAX = 16_777_215  # Qt's "no maximum" for a widget's size


class SplitPage(QWidget):
    """Subclasses build their title, chart and side panel, then call ``_lay_out``."""

    SIDE_WIDTH = 300   # the side panel's width beside the chart, in px at scale 1
    SIDE_HEIGHT = 300  # its height under the chart on an upright screen

    def _lay_out(self, title: QWidget, chart: QWidget, side: QWidget,
                 scale_chart: Callable[[float], None]) -> None:
        """Place the parts and size them now and at each theme scale change."""
        self._parts = (title, side, scale_chart)
        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.setSpacing(0)
        left.addWidget(title)
        left.addWidget(chart, 1)
        self._row = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.setSpacing(0)
        self._row.addLayout(left, 1)
        self._row.addWidget(side)
        self._theme = theme()
        self._theme.scaleChanged.connect(self._apply_scale)
        self._apply_scale()

    def _apply_scale(self) -> None:
        t = self._theme
        title, side, scale_chart = self._parts
        title.setFixedHeight(t.px(64))
        if t.portrait:
            self._row.setDirection(QBoxLayout.Direction.TopToBottom)
            side.setMinimumWidth(0)
            side.setMaximumWidth(QWIDGETSIZE_MAX)
            side.setFixedHeight(t.px(self.SIDE_HEIGHT))
        else:
            self._row.setDirection(QBoxLayout.Direction.LeftToRight)
            side.setMinimumHeight(0)
            side.setMaximumHeight(QWIDGETSIZE_MAX)
            side.setFixedWidth(t.px(self.SIDE_WIDTH))
        scale_chart(t.scale)
