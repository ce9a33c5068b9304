"""A read-only list model over rows of plain dicts, one role a key (the QML side reads the
roles by name). Subclasses name their roles and fill ``_rows`` between begin/end calls."""

from __future__ import annotations

from typing import Any, ClassVar

from PySide6.QtCore import QAbstractListModel, QByteArray, QModelIndex, QObject, Qt


def roles(*names: str) -> dict[str, int]:
    """Role numbers for ``names`` from Qt's first user role on."""
    return {name: Qt.ItemDataRole.UserRole + 1 + i for i, name in enumerate(names)}


class DictRowsModel(QAbstractListModel):
    """Rows of dicts keyed by the names of ``ROLES``; a row's value of a role is ``row[name]``."""

    ROLES: ClassVar[dict[str, int]] = {}

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[dict[str, Any]] = []

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def roleNames(self) -> dict[int, QByteArray]:
        return {r: QByteArray(n.encode()) for n, r in self.ROLES.items()}

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        for name, r in self.ROLES.items():
            if r == role:
                return self._rows[index.row()][name]
        return None
