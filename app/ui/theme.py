"""Colours and sizes for every screen, scaled from the 800x480 design to the window's size.

A light, high-contrast palette: dark text on light surfaces stays readable in a bright room
and on a glossy panel. Sizes are in design pixels times ``scale``; touch targets never drop
below 48 px.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Property, QObject, Signal

logger = logging.getLogger(__name__)

DESIGN_WIDTH = 800
DESIGN_HEIGHT = 480
MIN_TOUCH = 48
# From this size on, the dashboard and the selected algorithm's chart share the screen.
WIDE_WIDTH = 1600
WIDE_HEIGHT = 800


def scale_for(width: int, height: int) -> float:
    """Scale factor for a window: 1.0 at 800x480, growing much slower than the screen (1.5 at
    1920x1080) so a large screen shows more cards and a bigger chart, not the 800x480 layout
    blown up."""
    s = min(width / DESIGN_WIDTH, height / DESIGN_HEIGHT)
    return max(1.0, s ** 0.5)


class Theme(QObject):
    scaleChanged = Signal()

    # Colours (contrast against ``bg``/``surface`` >= 7:1 for text, >= 4.5:1 for accents).
    COLORS = {
        "bg": "#eef1f5",
        "surface": "#ffffff",
        "surfaceAlt": "#e2e7ee",
        "border": "#9aa5b4",
        "text": "#0d1117",
        "muted": "#3d4654",
        "accent": "#0a4fa6",
        "accentText": "#ffffff",
        "good": "#0b6b2f",
        "bad": "#b0201a",
        "warn": "#8a5300",
        "keyBg": "#dfe5ec",
        "keyText": "#0d1117",
        "dark": "#1b2330",
    }

    # One constant string property per colour, made in the class body so Qt's meta-object
    # knows them (properties added after class creation are invisible to QML).
    for _name, _value in COLORS.items():
        locals()[_name] = Property(str, lambda self, v=_value: v, constant=True)
    del _name, _value

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._scale = 1.0
        self._portrait = False
        self._wide = False

    def set_size(self, width: int, height: int) -> None:
        s = round(scale_for(width, height), 3)
        portrait = height > width
        wide = width >= WIDE_WIDTH and height >= WIDE_HEIGHT
        if (s, portrait, wide) != (self._scale, self._portrait, self._wide):
            self._scale, self._portrait, self._wide = s, portrait, wide
            self.scaleChanged.emit()

    @Property(bool, notify=scaleChanged)
    def portrait(self) -> bool:
        """Taller than wide (the Touch Display mounted upright): one column, stacked panels."""
        return self._portrait

    @Property(bool, notify=scaleChanged)
    def wide(self) -> bool:
        """Room for the dashboard and an algorithm's chart side by side (1920x1080)."""
        return self._wide

    def px(self, design: float) -> int:
        return int(round(design * self._scale))

    @Property(float, notify=scaleChanged)
    def scale(self) -> float:
        return self._scale

    # --- sizes -------------------------------------------------------------------------
    @Property(int, notify=scaleChanged)
    def touch(self) -> int:
        """Height of a button or key."""
        return max(MIN_TOUCH, self.px(52))

    @Property(int, notify=scaleChanged)
    def gap(self) -> int:
        return self.px(8)

    @Property(int, notify=scaleChanged)
    def radius(self) -> int:
        return self.px(8)

    @Property(int, notify=scaleChanged)
    def fontSmall(self) -> int:
        return self.px(14)

    @Property(int, notify=scaleChanged)
    def font(self) -> int:
        return self.px(17)

    @Property(int, notify=scaleChanged)
    def fontLarge(self) -> int:
        return self.px(22)

    @Property(int, notify=scaleChanged)
    def fontHuge(self) -> int:
        return self.px(32)

    @Property(int, notify=scaleChanged)
    def headerHeight(self) -> int:
        """Two rows in portrait (figures, then market and feed), one otherwise."""
        return self.px(96) if self._portrait else self.px(52)


_theme: Theme | None = None


def theme() -> Theme:
    """The process-wide theme, registered once as the QML singleton ``AutoTrader.Theme``.

    A singleton *instance* may serve only one QML engine, so the process has one engine too
    (``app.ui.qml.shared_engine``); the theme is never deleted.
    """
    global _theme
    if _theme is None:
        from PySide6.QtQml import QQmlEngine, qmlRegisterSingletonInstance

        _theme = Theme()
        QQmlEngine.setObjectOwnership(_theme, QQmlEngine.ObjectOwnership.CppOwnership)
        qmlRegisterSingletonInstance(Theme, "AutoTrader", 1, 0, "Theme", _theme)
    return _theme
