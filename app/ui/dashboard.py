"""The dashboard's view model: the card model, navigation requests and the stop-all control."""

from __future__ import annotations

import logging

from PySide6.QtCore import Property, QObject, Signal, Slot

from app.ui.cards import CardModel

logger = logging.getLogger(__name__)


class DashboardViewModel(QObject):
    changed = Signal()
    openRequested = Signal(int)
    newRequested = Signal()
    settingsRequested = Signal()
    lockRequested = Signal()
    stopAllRequested = Signal(bool)  # liquidate

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cards = CardModel(self)
        self._message = ""
        self._message_error = False
        self.cards.countChanged.connect(self.changed)

    @Property(QObject, constant=True)
    def cardModel(self) -> QObject:
        return self.cards

    @Property(int, notify=changed)
    def count(self) -> int:
        return self.cards.count()

    @Property(str, notify=changed)
    def message(self) -> str:
        return self._message

    @Property(bool, notify=changed)
    def messageIsError(self) -> bool:
        return self._message_error

    def set_message(self, text: str, error: bool = False) -> None:
        self._message, self._message_error = text, error
        self.changed.emit()

    @Slot(int)
    def open(self, algo_id: int) -> None:
        self.openRequested.emit(algo_id)

    @Slot()
    def newAlgorithm(self) -> None:
        self.newRequested.emit()

    @Slot()
    def settings(self) -> None:
        self.settingsRequested.emit()

    @Slot()
    def lock(self) -> None:
        self.lockRequested.emit()

    @Slot(bool)
    def stopAll(self, liquidate: bool) -> None:
        self.set_message("Stopping all algorithms and selling\u2026" if liquidate
                         else "Stopping all algorithms\u2026")
        self.stopAllRequested.emit(liquidate)

    @Slot()
    def dismissMessage(self) -> None:
        self.set_message("")
