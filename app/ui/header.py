"""The header's view model: account value, free money, market state and countdown, mode, stream.

The countdown is computed from the engine's clock (accelerated in the demo) and the calendar,
both cheap in-memory look-ups, once a second on the GUI thread. Account figures arrive from the
worker thread as plain dicts.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from PySide6.QtCore import Property, QObject, QTimer, Signal, Slot

from app.ui import format as fmt
from db.calendar import MarketCalendar, exchange_time

logger = logging.getLogger(__name__)

STREAM_TEXT = {
    "connecting": "connecting",
    "connected": "live data",
    "reconnecting": "reconnecting",
    "error": "data error",
    "stopped": "data stopped",
    "simulated": "simulated",
}


def ny_time_text(now: datetime) -> str:
    """'NYSE · 10:31 ET' (the engine's clock: the demo's own time in the demo)."""
    return f"NYSE \u00b7 {exchange_time(now).strftime('%H:%M')} ET"


def market_text(now: datetime, calendar: MarketCalendar) -> tuple[bool, str]:
    """(open?, 'OPEN · closes in 1:02:03' / 'CLOSED · opens in 14:02:11')."""
    try:
        session = calendar.session_at(now)
        if session is not None:
            return True, f"OPEN \u00b7 closes in {fmt.countdown((session.close - now).total_seconds())}"
        nxt = calendar.next_open(now)
        return False, f"CLOSED \u00b7 opens in {fmt.countdown((nxt - now).total_seconds())}"
    except ValueError as e:  # outside the calendar's range
        return False, f"CLOSED ({e})"


class HeaderViewModel(QObject):
    changed = Signal()

    def __init__(self, clock: Any, calendar: MarketCalendar | None, mode: str,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._clock = clock
        self._calendar = calendar
        self._mode = mode
        self._live_armed = mode != "live"
        self._account: dict[str, Any] = {}
        self._stream = ("connecting", "")
        self._market = (False, "starting\u2026")
        self._ny = "NYSE"
        self._today: tuple[float, float] | None = None  # (P&L, value at the day's start)
        self._counts = ""
        self._replay = ""  # the day a ``run --replay`` plays again ('' otherwise)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self.update_market)
        self._timer.start()
        self.update_market()

    def set_clock(self, clock: Any, calendar: MarketCalendar) -> None:
        """The engine's clock, once the engine exists (the window shows before it does)."""
        self._clock, self._calendar = clock, calendar
        self.update_market()

    @Slot()
    def update_market(self) -> None:
        if self._clock is None or self._calendar is None:
            return
        now = self._clock.now()
        m = market_text(now, self._calendar)
        ny = ny_time_text(now)
        if m != self._market or ny != self._ny:
            self._market, self._ny = m, ny
            self.changed.emit()

    @Slot(dict)
    def set_account(self, account: dict) -> None:
        self._account = dict(account)
        self.changed.emit()

    @Slot(float, float)
    def set_today(self, pnl: float, base: float) -> None:
        """Today's P&L of the algorithms and their value at the day's start."""
        if self._today != (pnl, base):
            self._today = (pnl, base)
            self.changed.emit()

    def set_counts(self, text: str) -> None:
        """'13 algorithms · 1 failing' (the lock screen's strip shows it)."""
        if text != self._counts:
            self._counts = text
            self.changed.emit()

    @Slot(str, str)
    def set_stream(self, state: str, detail: str) -> None:
        self._stream = (state, detail)
        self.changed.emit()

    def set_mode(self, mode: str, armed: bool) -> None:
        self._mode, self._live_armed = mode, armed
        self.changed.emit()

    def set_replay(self, day: str) -> None:
        """``run --replay DAY``: the badge says REPLAY and the day, not DEMO."""
        self._replay = str(day or "")
        self.changed.emit()

    def set_live_armed(self, armed: bool) -> None:
        self._live_armed = armed
        self.changed.emit()

    # --- shown ---------------------------------------------------------------------------
    @Property(str, notify=changed)
    def modeText(self) -> str:
        if self._replay:
            return "REPLAY"
        m = self._mode.upper()
        return m if self._live_armed else f"{m} \u00b7 PAUSED"

    @Property(str, notify=changed)
    def replayText(self) -> str:
        """The replayed day under REPLAY ('' when not a replay)."""
        return self._replay

    @Property(str, notify=changed)
    def mode(self) -> str:
        return self._mode

    @Property(str, notify=changed)
    def valueText(self) -> str:
        if "error" in self._account:
            return "unavailable"
        return fmt.money(self._account.get("equity"))

    @Property(str, notify=changed)
    def freeText(self) -> str:
        if "error" in self._account:
            return "\u2014"
        return fmt.money(self._account.get("free"))

    def _today_figures(self) -> tuple[float, float, bool] | None:
        """(P&L, base, the account's?): the broker's change of the account's value since the
        previous close (equity - last_equity) when it gives one, else the algorithms' own
        P&L since their last snapshot."""
        a = self._account
        equity, last = a.get("equity"), a.get("last_equity")
        if "error" not in a and isinstance(equity, int | float) and \
                isinstance(last, int | float) and last > 0:
            return float(equity) - float(last), float(last), True
        if self._today is not None:
            return self._today[0], self._today[1], False
        return None

    @Property(str, notify=changed)
    def todayLabel(self) -> str:
        """'Today' (the account, as the broker values it) or 'Algos today' (the fallback)."""
        f = self._today_figures()
        return "Algos today" if f is not None and not f[2] else "Today"

    @Property(str, notify=changed)
    def todayText(self) -> str:
        """'+$1,234.56 · +1.23%': the account's change since the previous close."""
        f = self._today_figures()
        if f is None:
            return "\u2014"
        pnl, base, _ = f
        pct = pnl / base * 100 if base else 0.0
        return f"{fmt.signed_money(pnl)} \u00b7 {fmt.signed_pct(pct)}"

    @Property(int, notify=changed)
    def todaySign(self) -> int:
        f = self._today_figures()
        return fmt.sign_of(f[0]) if f is not None else 0

    @Property(str, notify=changed)
    def countText(self) -> str:
        return self._counts

    @Property(str, notify=changed)
    def nyText(self) -> str:
        return self._ny

    @Property(bool, notify=changed)
    def marketOpen(self) -> bool:
        return self._market[0] and not self.halted

    @Property(str, notify=changed)
    def marketText(self) -> str:
        if self.halted:
            return "HALTED \u00b7 no orders sent"
        return self._market[1]

    @Property(str, notify=changed)
    def haltedText(self) -> str:
        """Why no order leaves (the broker says closed on a day the calendar thinks open)."""
        h = self._account.get("halted")
        return str(h) if h else ""

    @property
    def halted(self) -> bool:
        return bool(self._account.get("halted"))

    def market_is_open(self) -> bool:
        """Is the regular session open now (a sale would fill now, not at the next open)?"""
        return bool(self._market[0]) and not self.halted

    @Property(str, notify=changed)
    def streamState(self) -> str:
        return self._stream[0]

    @Property(str, notify=changed)
    def streamText(self) -> str:
        state, detail = self._stream
        text = STREAM_TEXT.get(state, state)
        return f"{text}: {detail}" if detail and state in ("error", "reconnecting") else text

    def free(self) -> float | None:
        """The last known money free for new algorithms (None before the first figures)."""
        v = self._account.get("free")
        return float(v) if isinstance(v, int | float) else None
