"""The Performance screen: the account's equity curve since the first day against buy and hold
of a reference ticker (SPY by default), and each algorithm's curve, over 1W / 1M / 3M / All.

The rows are the daily snapshots the engine records after each close (``db.performance``),
read on the worker thread when the page opens; the page shows each series in % of its value
at the start of the chosen range (the newest snapshot before it, else its first in range), so
a $100,000 account and a $5,000 algorithm share one axis. Pure functions compute the curves;
``PerformanceViewModel`` feeds the QML parts; ``app.ui.performance_page`` lays them out beside
a pyqtgraph chart (imported when the screen first opens).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from PySide6.QtCore import (
    Property,
    QObject,
    Signal,
    Slot,
)

from app.ops.performance import max_drawdown
from app.ui import format as fmt
from app.ui.rowmodel import DictRowsModel, roles

logger = logging.getLogger(__name__)

ACCOUNT = 0  # db.performance's algo id of the account row
RANGES = {"1W": 7, "1M": 31, "3M": 92, "All": 0}
# References a tap on the screen's reference button goes through (the configured one first).
REFERENCES = ("SPY", "QQQ", "DIA", "IWM")
ACCOUNT_COLOUR = "#0d1117"
BENCH_COLOUR = "#7a8494"
COLOURS = ("#0a4fa6", "#c25e00", "#0b6b2f", "#6a1b9a", "#b0201a", "#00796b", "#5d4037",
           "#ad1457", "#455a64", "#827717")


@dataclass(frozen=True)
class Curve:
    key: str  # "account", "bench", "algo:7"
    name: str
    detail: str
    colour: str
    days: tuple[str, ...]
    values: tuple[float, ...]
    base: float

    @property
    def pct(self) -> list[float]:
        return [(v / self.base - 1.0) * 100.0 if self.base else 0.0 for v in self.values]

    @property
    def change_pct(self) -> float | None:
        return self.pct[-1] if self.values and self.base else None


def range_start(today: date, name: str) -> str:
    """The first day (ISO) a range shows; '' for All."""
    days = RANGES.get(name, 0)
    return (today - timedelta(days=days)).isoformat() if days else ""


def build_curves(rows: list[dict[str, Any]], bench: list[tuple[str, float]], bench_name: str,
                 since: str) -> list[Curve]:
    """The account first, then the reference, then each algorithm (by id)."""
    by_algo: dict[int, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (int(r["algo_id"]), str(r["day"]))):
        by_algo.setdefault(int(r["algo_id"]), []).append(r)
    out: list[Curve] = []

    def curve(key: str, name: str, detail: str, colour: str,
              points: list[tuple[str, float]]) -> Curve | None:
        before = [v for d, v in points if d < since]
        shown = [(d, v) for d, v in points if d >= since and math.isfinite(v)]
        if not shown:
            return None
        base = before[-1] if before else shown[0][1]
        return Curve(key, name, detail, colour, tuple(d for d, _ in shown),
                     tuple(v for _, v in shown), float(base))

    def pts(g: list[dict[str, Any]]) -> list[tuple[str, float]]:
        return [(str(r["day"]), float(r["value"])) for r in g]

    acct = by_algo.pop(ACCOUNT, [])
    c = curve("account", "Account", "all algorithms and cash", ACCOUNT_COLOUR, pts(acct))
    if c:
        out.append(c)
    if bench:
        c = curve("bench", f"{bench_name} buy and hold", "reference", BENCH_COLOUR, list(bench))
        if c:
            out.append(c)
    for i, algo_id in enumerate(sorted(by_algo)):
        g = by_algo[algo_id]
        last = g[-1]
        c = curve(f"algo:{algo_id}", f"{last['ticker']} \u00b7 {last['name']}",
                  f"#{algo_id} \u00b7 {str(last.get('status') or '').lower()}",
                  COLOURS[i % len(COLOURS)], pts(g))
        if c:
            out.append(c)
    return out


def day_epoch(day: str) -> float:
    """Noon UTC of an ISO day: the x of that day's point (the date axis reads it back)."""
    d = date.fromisoformat(day)
    return datetime(d.year, d.month, d.day, 12, tzinfo=UTC).timestamp()


class CurveListModel(DictRowsModel):
    """One row per curve: its colour, name, change over the range, last value, drawdown."""

    ROLES = roles("key", "name", "detail", "colour", "changeText", "changeSign", "valueText",
                  "drawdownText")

    def set_curves(self, curves: list[Curve]) -> None:
        self.beginResetModel()
        self._rows = [{
            "key": c.key, "name": c.name, "detail": c.detail, "colour": c.colour,
            "changeText": fmt.signed_pct(c.change_pct), "changeSign": fmt.sign_of(c.change_pct),
            "valueText": "" if c.key == "bench" else fmt.money(c.values[-1], cents=False),
            "drawdownText": f"max drawdown {max_drawdown(list(c.values)):.1f}%",
        } for c in curves]
        self.endResetModel()

    def rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._rows]


class PerformanceViewModel(QObject):
    changed = Signal()
    backRequested = Signal()
    reloadRequested = Signal(str)  # the reference ticker to read with the snapshots
    curvesChanged = Signal()

    def __init__(self, today: Any = None, parent: QObject | None = None,
                 reference: str = "SPY") -> None:
        super().__init__(parent)
        self._today = today or (lambda: date.today())
        self._rows: list[dict[str, Any]] = []
        self._bench: list[tuple[str, float]] = []
        self._bench_name = reference  # shown now, read with the next load
        self._references = [reference] + [r for r in REFERENCES if r != reference]
        self._range = "1M"
        self._loading = False
        self._loaded = False
        self.curves: list[Curve] = []
        self.model = CurveListModel(self)

    def set_today(self, today: Any) -> None:
        """``today()`` gives the exchange's date (the demo's own clock in the demo)."""
        self._today = today

    def open(self) -> None:
        self._loading = True
        self.changed.emit()
        self.reloadRequested.emit(self._bench_name)

    @Slot(list, list, str)
    def set_data(self, rows: list, bench: list, bench_name: str) -> None:
        self._rows, self._bench, self._bench_name = list(rows), list(bench), bench_name
        self._loading, self._loaded = False, True
        self._rebuild()

    def _rebuild(self) -> None:
        since = range_start(self._today(), self._range)
        self.curves = build_curves(self._rows, self._bench, self._bench_name, since)
        self.model.set_curves(self.curves)
        self.changed.emit()
        self.curvesChanged.emit()

    # --- shown ---------------------------------------------------------------------------
    @Property(QObject, constant=True)
    def curveModel(self) -> QObject:
        return self.model

    @Property(str, notify=changed)
    def range(self) -> str:
        return self._range

    @Property(list, constant=True)
    def ranges(self) -> list:
        return list(RANGES)

    @Property(str, notify=changed)
    def message(self) -> str:
        """Why the chart is empty, or what is missing (the reference's history)."""
        if self._loading and not self._loaded:
            return "Reading the daily snapshots\u2026"
        if not self._rows:
            return ("No daily snapshots yet: one is taken after each close, so the first "
                    "curve appears after the first trading day.")
        if not self.curves:
            return f"No snapshots in the last {self._range}: choose a longer range."
        if not any(c.key == "bench" for c in self.curves):
            return (f"No {self._bench_name} history stored for these days; `autotrader data "
                    f"fetch {self._bench_name} --start ...` adds it.")
        return ""

    @Property(str, notify=changed)
    def spanText(self) -> str:
        days = sorted({d for c in self.curves for d in c.days})
        if not days:
            return ""
        first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
        return (f"{first:%b %d, %Y} \u2013 {last:%b %d, %Y} \u00b7 {len(days)} "
                f"day{'s' if len(days) != 1 else ''} \u00b7 in % of each one's start")

    # --- actions -------------------------------------------------------------------------
    @property
    def reference(self) -> str:
        return self._bench_name

    @Property(str, notify=changed)
    def referenceText(self) -> str:
        return f"vs {self._bench_name}"

    @Slot()
    def nextReference(self) -> None:
        """The reference button: the next of the references (config's first), read again."""
        i = self._references.index(self._bench_name) if self._bench_name in \
            self._references else -1
        self._bench_name = self._references[(i + 1) % len(self._references)]
        self.open()

    @Slot(str)
    def setRange(self, name: str) -> None:
        if name in RANGES and name != self._range:
            self._range = name
            self._rebuild()

    @Slot()
    def back(self) -> None:
        self.backRequested.emit()
