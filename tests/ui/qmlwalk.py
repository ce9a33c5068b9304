"""Walking the QML item tree of every visible page: numbers that are elided or cut, and touch
targets smaller than a finger (issue 12's "done when")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from PySide6.QtCore import QRectF
from PySide6.QtQuick import QQuickItem
from PySide6.QtQuickWidgets import QQuickWidget

MIN_TOUCH = 48
NUMBER = re.compile(r"\d")


def items(root: QQuickItem) -> Iterator[QQuickItem]:
    yield root
    for child in root.childItems():
        yield from items(child)


def _class(item: QQuickItem) -> str:
    return item.metaObject().className()


def _scene_rect(item: QQuickItem) -> QRectF:
    return item.mapRectToScene(QRectF(0, 0, item.width(), item.height()))


def _in_flickable(item: QQuickItem) -> bool:
    p = item.parentItem()
    while p is not None:
        if p.clip() and p.inherits("QQuickFlickable"):
            return True
        p = p.parentItem()
    return False


def _is_button(item: QQuickItem) -> bool:
    """Our ``Btn`` (a Rectangle with ``kind`` and ``labelWidth``)."""
    return item.property("labelWidth") is not None and item.property("kind") is not None


def problems(widget: QQuickWidget, page: str) -> list[str]:
    """What a user would see wrong on ``widget``'s scene: numbers elided, shrunk out of their
    box or cut by the screen's edge; buttons under 48x48 px."""
    root = widget.rootObject()
    if root is None or not widget.isVisible():
        return []
    view = QRectF(0, 0, widget.width(), widget.height())
    out: list[str] = []
    for it in items(root):
        if not it.isVisible() or it.opacity() <= 0.01 or it.width() <= 0:
            continue
        rect = _scene_rect(it)
        name = it.objectName() or _class(it)
        if _class(it).startswith("QQuickText") and not _class(it).startswith("QQuickTextEdit"):
            text = str(it.property("text") or "")
            if not NUMBER.search(text) or it.property("prose"):
                continue  # prose (an error's two lines with "more"): not a figure
            if it.property("truncated"):
                out.append(f"{page}: {name} {text!r} is elided or cut")
            elif float(it.property("contentWidth") or 0) > it.width() + 1.5:
                out.append(f"{page}: {name} {text!r} is wider than its box "
                           f"({it.property('contentWidth'):.0f} > {it.width():.0f})")
            elif not _in_flickable(it) and not view.adjusted(-1, -1, 1, 1).contains(rect):
                out.append(f"{page}: {name} {text!r} is cut by the screen's edge")
        elif _is_button(it) and it.property("active") is not False:
            if it.width() < MIN_TOUCH - 0.5 or it.height() < MIN_TOUCH - 0.5:
                out.append(f"{page}: button {it.property('text')!r} is {it.width():.0f}x"
                           f"{it.height():.0f}")
            elif not _in_flickable(it) and not view.adjusted(-1, -1, 1, 1).contains(rect):
                out.append(f"{page}: button {it.property('text')!r} is off the screen")
    return out


def window_problems(w: Any) -> list[str]:
    """Every visible QML scene of the window (header, page, Detail's parts)."""
    out: list[str] = []
    for qw in w.findChildren(QQuickWidget):
        if qw.isVisible():
            out += problems(qw, qw.objectName())
    return out
