"""The dashboard's view model: the card model, navigation requests and the stop-all control."""

from __future__ import annotations

import logging

from PySide6.QtCore import Property, QObject, QTimer, Signal, Slot

from app.ui import format as fmt
from app.ui.cards import CardModel

# Banners go away by themselves; an error stays a little longer. The banner sits in the
# action row (reserved space), so it never covers or pushes the cards.
MESSAGE_MS = 6_000
ERROR_MESSAGE_MS = 12_000


def count_text(counts: dict[str, int]) -> str:
    """"13 algorithms · 1 failing · 2 paused"."""
    n = sum(counts.values())
    text = f"{n} algorithm{'s' if n != 1 else ''}"
    for key in ("failing", "paused"):
        if counts.get(key):
            text += f" \u00b7 {counts[key]} {key}"
    return text

logger = logging.getLogger(__name__)


class DashboardViewModel(QObject):
    changed = Signal()
    openRequested = Signal(int)
    newRequested = Signal()
    settingsRequested = Signal()
    performanceRequested = Signal()
    lockRequested = Signal()
    stopAllRequested = Signal(bool)  # liquidate

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cards = CardModel(self)
        self._message = ""
        self._message_error = False
        self._sticky = False
        self._selected = -1
        self.cards.countChanged.connect(self.changed)
        self.cards.statusChanged.connect(self.changed)
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(self._expire)

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

    @Property(str, notify=changed)
    def countText(self) -> str:
        return count_text(self.cards.status_counts())

    def set_message(self, text: str, error: bool = False, sticky: bool = False) -> None:
        """A short sentence in the banner slot; it goes after a few seconds unless
        ``sticky`` (work in progress, replaced by its result)."""
        self._message, self._message_error = fmt.human(text), error
        self._sticky = sticky
        self._message_timer.stop()
        if self._message and not sticky:
            self._message_timer.start(ERROR_MESSAGE_MS if error else MESSAGE_MS)
        self.changed.emit()

    def _expire(self) -> None:
        self.set_message("")

    @Slot(int)
    def open(self, algo_id: int) -> None:
        self.openRequested.emit(algo_id)

    @Slot()
    def newAlgorithm(self) -> None:
        self.newRequested.emit()

    @Property(int, notify=changed)
    def selectedId(self) -> int:
        """The algorithm shown beside the cards on a wide screen (-1: none)."""
        return self._selected

    def set_selected(self, algo_id: int) -> None:
        if algo_id != self._selected:
            self._selected = algo_id
            self.changed.emit()

    @Slot()
    def performance(self) -> None:
        self.performanceRequested.emit()

    @Slot()
    def settings(self) -> None:
        self.settingsRequested.emit()

    @Slot()
    def lock(self) -> None:
        self.lockRequested.emit()

    @Slot(bool)
    def stopAll(self, liquidate: bool) -> None:
        if not liquidate:  # selling asks for the PIN first; the window says when it starts
            self.set_message("Stopping all algorithms\u2026", sticky=True)
        self.stopAllRequested.emit(liquidate)

    @Slot()
    def dismissMessage(self) -> None:
        self.set_message("")
