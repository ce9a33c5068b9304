"""Algorithm detail: a QML title bar and side panel around a live pyqtgraph chart.

``DetailViewModel`` holds the shown algorithm's card fields (from the card model) and its
transactions; ``DetailPage`` is the widget layout: [title bar / chart] | side panel.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import (
    Property,
    QModelIndex,
    QObject,
    Signal,
    Slot,
)
from PySide6.QtQml import QQmlEngine
from PySide6.QtWidgets import QWidget

from app.ui import format as fmt
from app.ui.qml import load_page
from app.ui.rowmodel import DictRowsModel, roles
from app.ui.split_page import SplitPage
from db.calendar import exchange_time
from db.timeutil import parse_iso

logger = logging.getLogger(__name__)

INDICATOR_KINDS = ("sma",)


def indicator_windows(declared: Any, params: dict[str, Any]) -> list[int]:
    """SMA lengths to draw, from the plugin's own ``indicators`` declaration only.

    ``declared`` is the plugin class's ``indicators`` attribute: ``(("sma", "sma_short"),
    ("sma", 50))``; a length naming a parameter takes the algorithm's value of it. A plugin
    that declares nothing gets no lines (an RSI's ``period = 14`` is not an SMA)."""
    out = []
    for item in declared or ():
        try:
            kind, length = item
        except (TypeError, ValueError):
            logger.warning("ignored chart indicator %r: expected (kind, length)", item)
            continue
        if str(kind).lower() not in INDICATOR_KINDS:
            logger.info("chart indicator kind %r is not drawn (known: %s)", kind,
                        ", ".join(INDICATOR_KINDS))
            continue
        v = params.get(length) if isinstance(length, str) else length
        if isinstance(v, int) and not isinstance(v, bool) and 1 < v <= 10_000:
            out.append(v)
    return sorted(set(out))


class TransactionModel(DictRowsModel):
    """Newest first, the latest ``MAX_ROWS`` (Detail left open on a busy algorithm for months
    would otherwise keep one row per fill for good; the CLI's export has them all)."""

    MAX_ROWS = 500
    ROLES = roles("side", "sharesText", "priceText", "timeText")

    @staticmethod
    def _row(t: dict) -> dict[str, str]:
        try:
            when = exchange_time(parse_iso(str(t["timestamp"]))).strftime("%b %d %H:%M")
        except (ValueError, KeyError):
            when = str(t.get("timestamp", ""))
        return {"side": str(t.get("type", "")).upper(), "sharesText": f"{int(t['shares']):,}",
                "priceText": fmt.price(float(t["price"])), "timeText": when}

    def set_transactions(self, txs: list[dict]) -> None:
        self.beginResetModel()
        self._rows = [self._row(t) for t in reversed(txs[-self.MAX_ROWS:])]
        self.endResetModel()

    def add(self, t: dict) -> None:
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._rows.insert(0, self._row(t))
        self.endInsertRows()
        if len(self._rows) > self.MAX_ROWS:
            n = len(self._rows)
            self.beginRemoveRows(QModelIndex(), self.MAX_ROWS, n - 1)
            del self._rows[self.MAX_ROWS:]
            self.endRemoveRows()

    def count(self) -> int:
        return len(self._rows)


class DetailViewModel(QObject):
    changed = Signal()
    backRequested = Signal()
    actionRequested = Signal(str, int, bool)   # stop|resume|delete, algo id, liquidate
    zoomRequested = Signal(float)
    followRequested = Signal()
    daysRequested = Signal(int)
    candlesRequested = Signal(bool)
    opened = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._card: dict[str, Any] = {}
        self._busy = ""
        self._message = ""
        self._candles = False
        self._docked = False
        self.transactions = TransactionModel(self)

    def show(self, card: dict[str, Any] | None) -> None:
        """A page opening: its own card, no leftover busy state or message."""
        self._card = dict(card or {})
        self._message = ""
        self._busy = ""
        self.changed.emit()
        self.opened.emit()

    def update_card(self, card: dict[str, Any] | None) -> None:
        if card and card.get("algoId") == self.algo_id and card != self._card:
            self._card = dict(card)
            self.changed.emit()

    def set_busy(self, text: str) -> None:
        self._busy = text
        self.changed.emit()

    def set_message(self, text: str) -> None:
        self._message, self._busy = text, ""
        self.changed.emit()

    @property
    def algo_id(self) -> int:
        return int(self._card.get("algoId", -1))

    def _get(self, key: str) -> str:
        return str(self._card.get(key, ""))

    @Property(QObject, constant=True)
    def txModel(self) -> QObject:
        return self.transactions

    @Property(str, notify=changed)
    def ticker(self) -> str:
        return self._get("ticker")

    @Property(str, notify=changed)
    def plugin(self) -> str:
        return self._get("plugin")

    @Property(str, notify=changed)
    def status(self) -> str:
        return self._get("status")

    @Property(str, notify=changed)
    def statusText(self) -> str:
        return self._get("statusText")

    @Property(str, notify=changed)
    def error(self) -> str:
        return self._get("error")

    @Property(str, notify=changed)
    def positionText(self) -> str:
        return self._get("positionText")

    @Property(str, notify=changed)
    def holdingText(self) -> str:
        return self._get("holdingText")

    @Property(str, notify=changed)
    def pluginName(self) -> str:
        return self._get("pluginName")

    @Property(bool, notify=changed)
    def holds(self) -> bool:
        return self._get("positionText") not in ("", "no position")

    @Property(str, notify=changed)
    def lastPriceText(self) -> str:
        return self._get("lastPriceText")

    @Property(str, notify=changed)
    def valueText(self) -> str:
        return self._get("valueText")

    @Property(str, notify=changed)
    def pnlText(self) -> str:
        return f"{self._get('pnlText')}  ({self._get('pnlPctText')})" if self._card else ""

    @Property(int, notify=changed)
    def pnlSign(self) -> int:
        return int(self._card.get("pnlSign", 0))

    @Property(str, notify=changed)
    def busy(self) -> str:
        return self._busy

    @Property(str, notify=changed)
    def message(self) -> str:
        return self._message

    @Slot()
    def back(self) -> None:
        self.backRequested.emit()

    @Slot(bool)
    def stop(self, liquidate: bool) -> None:
        """Stop; selling asks for the PIN first (the window), so no busy state yet."""
        if not liquidate:
            self.set_busy("Stopping\u2026")
        self.actionRequested.emit("stop", self.algo_id, liquidate)

    @Slot()
    def accept(self) -> None:
        """A pause over a position difference: take the broker's figure and run again."""
        self.set_busy("Accepting the broker's position\u2026")
        self.actionRequested.emit("accept", self.algo_id, False)

    @Slot()
    def resume(self) -> None:
        self.set_busy("Resuming\u2026")
        self.actionRequested.emit("resume", self.algo_id, False)

    @Slot()
    def remove(self) -> None:
        """Delete; the window asks for the PIN first."""
        self.actionRequested.emit("delete", self.algo_id, False)

    @Slot(float)
    def zoom(self, factor: float) -> None:
        self.zoomRequested.emit(factor)

    @Slot()
    def follow(self) -> None:
        self.followRequested.emit()

    @Slot(int)
    def showDays(self, days: int) -> None:
        self.daysRequested.emit(int(days))

    @Property(int, notify=changed)
    def algoId(self) -> int:
        return self.algo_id

    @Property(bool, notify=changed)
    def candles(self) -> bool:
        return self._candles

    @Slot()
    def toggleCandles(self) -> None:
        """Candlesticks <-> closing-price line (kept while the app runs)."""
        self._candles = not self._candles
        self.candlesRequested.emit(self._candles)
        self.changed.emit()

    @Property(bool, notify=changed)
    def docked(self) -> bool:
        """Shown beside the dashboard (wide screens): no Back button."""
        return self._docked

    def set_docked(self, docked: bool) -> None:
        if docked != self._docked:
            self._docked = docked
            self.changed.emit()


class DetailPage(SplitPage):
    """[QML title bar over the chart] beside [QML side panel: figures, transactions, actions]."""

    SIDE_WIDTH = 290
    SIDE_HEIGHT = 380

    def __init__(self, engine: QQmlEngine, vm: DetailViewModel,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailPage")
        self.vm = vm
        self.title = load_page(engine, "DetailTitle.qml", {"detail": vm}, self)
        self.side = load_page(engine, "DetailSide.qml", {"detail": vm}, self)
        # pyqtgraph (about a second of imports on the Pi) loads with the first Detail page,
        # not before the lock screen's first frame.
        from app.ui.chart import PriceChart

        self.chart = PriceChart(self)
        vm.zoomRequested.connect(self.chart.zoom)
        vm.followRequested.connect(self.chart.follow)
        vm.daysRequested.connect(self.chart.show_days)
        vm.candlesRequested.connect(self.chart.set_candles)
        self._lay_out(self.title, self.chart, self.side, self.chart.apply_scale)
