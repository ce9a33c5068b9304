"""The one QQmlEngine every screen shares, and loading a QML page into a QQuickWidget.

View models reach QML as *initial properties* of each page's root item (``required property``
in QML), not as context-property globals: a page says exactly what it uses.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtQml import QQmlComponent, QQmlEngine
from PySide6.QtQuickWidgets import QQuickWidget
from PySide6.QtWidgets import QWidget

logger = logging.getLogger(__name__)

QML_DIR = Path(__file__).resolve().parents[2] / "resources" / "qml"


class QmlLoadError(RuntimeError):
    pass


_engine: QQmlEngine | None = None


def make_engine(parent: QObject | None = None) -> QQmlEngine:
    """A QQmlEngine with the app's import path; RuntimeError before the QGuiApplication.

    Qt aborts the whole process (SIGABRT, nothing to catch) when a QQmlEngine is made before
    the application object, so this is said in Python instead.
    """
    if QGuiApplication.instance() is None:
        raise RuntimeError("a QML engine needs the QApplication: create it first")
    engine = QQmlEngine(parent)
    engine.addImportPath(str(QML_DIR))
    engine.warnings.connect(_log_warnings)
    return engine


def shared_engine() -> QQmlEngine:
    """The process's one QQmlEngine (created after the QApplication, kept until exit).

    Every page of every window uses it: one engine per process is what a QML singleton
    instance (the theme) allows, and it is what the window structure wants anyway.
    """
    global _engine
    if _engine is None:
        from app.ui.theme import theme

        theme()
        _engine = make_engine()
        from app.ui.jsgc import start_js_collector

        start_js_collector(_engine)  # its JS garbage collected every minute (issue 19)
    return _engine


def _log_warnings(warnings: list) -> None:
    for w in warnings:
        logger.warning("QML: %s", w.toString())


def load_page(engine: QQmlEngine, name: str, props: dict[str, Any],
              parent: QWidget | None = None) -> QQuickWidget:
    """A QQuickWidget showing ``resources/qml/<name>`` with ``props`` as required properties."""
    url = QUrl.fromLocalFile(str(QML_DIR / name))
    w = QQuickWidget(engine, parent)
    w.setResizeMode(QQuickWidget.ResizeMode.SizeRootObjectToView)
    w.setObjectName(name.removesuffix(".qml"))
    # Fingers, not only mice: QQuickWidget accepts touch events by itself except on macOS.
    # Only there is ``Qt`` named: the first use of that namespace builds all its ~100 Python
    # enums (15-40 ms here), which the lock screen's first frame does not wait for (issue 15).
    if sys.platform == "darwin":
        from PySide6.QtCore import Qt

        w.setAttribute(Qt.WidgetAttribute.WA_AcceptTouchEvents, True)
    if hasattr(w, "setInitialProperties"):  # Qt >= 6.9
        w.setInitialProperties(props)
        w.setSource(url)
    else:  # Qt 6.8 (Debian 13 on the Pi): create the root item ourselves.
        component = QQmlComponent(engine, url, w)
        item = component.createWithInitialProperties(props)
        if item is None:
            raise QmlLoadError(f"{name}: {component.errorString()}")
        w.setContent(url, component, item)
    if w.status() == QQuickWidget.Status.Error or w.rootObject() is None:
        raise QmlLoadError(f"{name}: " + "; ".join(e.toString() for e in w.errors()))
    return w
