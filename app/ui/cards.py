"""The dashboard's algorithm cards: a list model with one role per shown field.

The model keeps each algorithm's *inputs* (the engine's AlgoView fields and the latest price)
and derives what a card shows with pure functions; an update emits ``dataChanged`` naming only
the roles whose text changed, so QML repaints one label, not the grid.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, is_dataclass
from typing import Any

from PySide6.QtCore import QAbstractListModel, QByteArray, QModelIndex, QObject, Qt, Signal, Slot

from app.engine.ledger import marked_value, pnl_percent
from app.ui import format as fmt

logger = logging.getLogger(__name__)

SPARK_POINTS = 60

ROLE_NAMES = (
    "algoId", "name", "ticker", "plugin", "status", "statusText", "error", "positionText",
    "lastPriceText", "valueText", "pnlText", "pnlPctText", "pnlSign", "spark", "pluginName",
    "holdingText", "avgCost", "pillText", "sinceText",
)

# What a card says, from the engine's status and error. FAILING: running but its last
# minutes raised, were refused or timed out (the engine keeps the error on a running
# algorithm); PAUSED: a guard or a position difference holds it (with the reason); STOPPED
# keeps its stop reason (a risk guard's, for instance). Failing ones come first.
STATUS_ORDER = {"failing": 0, "paused": 1, "running": 2, "stopped": 3}


def shown_status(status: str, error: str) -> str:
    if status == "error" or (status == "running" and error):
        return "failing"
    if status in STATUS_ORDER:
        return status
    return "stopped"
ROLES = {name: Qt.ItemDataRole.UserRole + 1 + i for i, name in enumerate(ROLE_NAMES)}


def as_dict(view: Any) -> dict[str, Any]:
    """An AlgoView (dataclass) or a plain dict as a dict."""
    if is_dataclass(view) and not isinstance(view, type):
        return asdict(view)
    return dict(view)


def derive(state: dict[str, Any]) -> dict[str, Any]:
    """What a card shows, from the algorithm's ledger figures and the latest price."""
    position = int(state.get("position") or 0)
    last = state.get("last_price")
    cash = float(state.get("cash") or 0.0)
    initial = float(state.get("initial_capital") or 0.0)
    if last is not None:  # a bar newer than the engine's last read: the ledger's valuation
        value = marked_value(cash, position, state.get("avg_cost"), float(last))
        pnl = value - initial
        pnl_pct = pnl_percent(pnl, initial)
    else:
        value, pnl, pnl_pct = state.get("value"), state.get("pnl"), state.get("pnl_pct")
    error = str(state.get("error") or "")
    status = shown_status(str(state.get("status") or "stopped"), error)
    avg = state.get("avg_cost")
    if position:
        position_text = f"{position:,} sh" + (f" @ {fmt.price(avg)}" if avg else "")
    else:
        position_text = "no position"
    # "50 sh · $8,770 of $10,000": what it holds and what it is worth against its capital.
    worth = fmt.money(value, cents=False) + " of " + fmt.money(initial, cents=False)
    holding = f"{position:,} sh · {worth}" if position else f"cash · {worth}"
    status_text = status.upper()
    since = str(state.get("_since") or "") if status == "failing" else ""
    if since:
        status_text += f" since {since}"
    return {
        "algoId": int(state["id"]),
        "name": state.get("name") or "",
        "ticker": state.get("ticker") or "",
        "plugin": state.get("plugin") or "",
        "status": status,
        "statusText": status_text,
        "error": error,
        "positionText": position_text,
        "lastPriceText": fmt.price(last),
        "valueText": fmt.money(value),
        "pnlText": fmt.signed_money(pnl),
        "pnlPctText": fmt.signed_pct(pnl_pct),
        "pnlSign": fmt.sign_of(pnl),
        "spark": list(state.get("spark") or []),
        "pluginName": fmt.plugin_name(state.get("plugin") or "",
                                      state.get("plugin_display_name")),
        "holdingText": holding,
        "avgCost": float(avg) if (avg and position) else 0.0,
        # The card's pill holds the word only, so the plugin's name beside it keeps its room;
        # "since 10:42" leads the card's reason line instead.
        "pillText": status.upper(),
        "sinceText": since,
    }


class CardModel(QAbstractListModel):
    countChanged = Signal()
    statusChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._states: list[dict[str, Any]] = []
        self._shown: list[dict[str, Any]] = []
        self._now: Any = None  # () -> "10:42" in New York time, for "FAILING since"
        self._since: dict[int, str] = {}

    def set_clock(self, now_text: Any) -> None:
        """``now_text()`` gives the time to show when an algorithm starts failing."""
        self._now = now_text

    def _note_since(self, d: dict[str, Any]) -> None:
        algo_id = int(d["id"])
        if shown_status(str(d.get("status") or ""), str(d.get("error") or "")) != "failing":
            self._since.pop(algo_id, None)
        elif algo_id not in self._since and self._now is not None:
            try:
                self._since[algo_id] = str(self._now())
            except Exception:  # noqa: BLE001 - a label, never worth a crash
                logger.exception("reading the clock failed")
        d["_since"] = self._since.get(algo_id, "")

    @staticmethod
    def _order_key(d: dict[str, Any]) -> tuple[int, int]:
        st = shown_status(str(d.get("status") or ""), str(d.get("error") or ""))
        return STATUS_ORDER.get(st, 9), int(d["id"])

    # --- Qt model API --------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._shown)

    def roleNames(self) -> dict[int, QByteArray]:
        return {r: QByteArray(n.encode()) for n, r in ROLES.items()}

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._shown):
            return None
        shown = self._shown[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return shown["ticker"]
        for name, r in ROLES.items():
            if r == role:
                return shown[name]
        return None

    # --- updates -------------------------------------------------------------------------
    def row_of(self, algo_id: int) -> int:
        for i, s in enumerate(self._states):
            if s["id"] == algo_id:
                return i
        return -1

    def card(self, algo_id: int) -> dict[str, Any] | None:
        """What the card for ``algo_id`` shows (tests and the detail page read it)."""
        i = self.row_of(algo_id)
        return dict(self._shown[i]) if i >= 0 else None

    def state(self, algo_id: int) -> dict[str, Any] | None:
        i = self.row_of(algo_id)
        return dict(self._states[i]) if i >= 0 else None

    def ids(self) -> list[int]:
        return [s["id"] for s in self._states]

    def _refresh_row(self, i: int) -> None:
        new = derive(self._states[i])
        old = self._shown[i]
        changed = [ROLES[k] for k in ROLE_NAMES if new[k] != old.get(k)]
        if changed:
            self._shown[i] = new
            idx = self.index(i, 0)
            self.dataChanged.emit(idx, idx, changed)

    def set_views(self, views: list[Any], sparks: dict[str, list[float]] | None = None) -> None:
        """Replace the cards with ``views`` (AlgoViews, ordered by id), keeping rows that stay."""
        sparks = sparks or {}
        before = len(self._states)
        incoming = {}
        for v in views:
            d = as_dict(v)
            self._note_since(d)
            incoming[int(d["id"])] = d
        # Removals first, from the bottom so indexes stay valid.
        for i in range(len(self._states) - 1, -1, -1):
            if self._states[i]["id"] not in incoming:
                self.beginRemoveRows(QModelIndex(), i, i)
                del self._states[i]
                del self._shown[i]
                self.endRemoveRows()
        known = {s["id"]: i for i, s in enumerate(self._states)}
        for algo_id, d in incoming.items():
            spark = sparks.get(d.get("ticker", ""))
            if algo_id in known:
                i = known[algo_id]
                state = self._states[i]
                keep_spark = state.get("spark")
                state.update(d)
                state["spark"] = list(spark[-SPARK_POINTS:]) if spark is not None else keep_spark
                self._refresh_row(i)
            else:
                d["spark"] = list((spark or [])[-SPARK_POINTS:])
                row = len(self._states)
                self.beginInsertRows(QModelIndex(), row, row)
                self._states.append(d)
                self._shown.append(derive(d))
                self.endInsertRows()
        order = sorted(range(len(self._states)), key=lambda i: self._order_key(self._states[i]))
        if order != list(range(len(self._states))):
            # Failing first, then paused, running, stopped: a reset, rare (a status change).
            self.beginResetModel()
            self._states = [self._states[i] for i in order]
            self._shown = [self._shown[i] for i in order]
            self.endResetModel()
        if len(self._states) != before:
            self.countChanged.emit()
        self.statusChanged.emit()

    def status_counts(self) -> dict[str, int]:
        out = {k: 0 for k in STATUS_ORDER}
        for s in self._shown:
            out[s["status"]] = out.get(s["status"], 0) + 1
        return out

    @Slot(object)
    def apply_snapshot(self, view: Any) -> None:
        """The engine's pushed snapshot of one algorithm (after a fill, stop, resume, pause):
        its card shows the ledger's figures at once, without waiting for the next read."""
        d = as_dict(view)
        i = self.row_of(int(d.get("id", -1)))
        if i < 0:
            return
        state = self._states[i]
        if d.get("last_price") is None:
            d.pop("last_price", None)  # keep the price the card already has
        self._note_since(d)
        status_before = self._shown[i]["status"]
        state.update(d)
        self._refresh_row(i)
        if self._shown[i]["status"] != status_before:
            self.statusChanged.emit()

    @Slot(str, int, float)
    def apply_bar(self, ticker: str, ts: int, close: float) -> None:
        """A new bar: update the last price, P&L and sparkline of every card on ``ticker``."""
        for i, s in enumerate(self._states):
            if s.get("ticker") != ticker:
                continue
            last_ts = s.get("_last_ts", 0)
            if ts < last_ts:
                continue  # an older bar arriving late changes nothing shown
            s["_last_ts"] = ts
            s["last_price"] = float(close)
            spark = list(s.get("spark") or [])
            if ts == last_ts and spark:
                spark[-1] = float(close)  # a corrected bar replaces its point
            else:
                spark.append(float(close))
            s["spark"] = spark[-SPARK_POINTS:]
            self._refresh_row(i)

    def count(self) -> int:
        return len(self._states)
