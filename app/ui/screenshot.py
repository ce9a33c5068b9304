"""Saving what a widget shows as a PNG (tests, the README's pictures, bug reports)."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtWidgets import QWidget

logger = logging.getLogger(__name__)


def save_png(widget: QWidget, path: Path) -> Path:
    """Render ``widget`` (and its children: QML pages and charts alike) into ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not widget.grab().save(str(path), "PNG"):
        raise OSError(f"cannot write {path}")
    logger.info("screenshot %s", path)
    return path
