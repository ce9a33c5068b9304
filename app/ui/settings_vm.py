"""Settings screen: change the PIN, idle lock time, demo speed, key status, latest log lines.

Choices are stored in the system DB's settings table (``ui.idle_lock_seconds``,
``demo.speed``) and win over the config file's defaults on the next start, unless an
environment variable or flag set them explicitly. Keys are only ever shown as set / not set.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Property, QObject, Signal, Slot

from app import __version__
from app.logging_setup import LOG_FILENAME, tail

logger = logging.getLogger(__name__)

IDLE_KEY = "ui.idle_lock_seconds"
SPEED_KEY = "demo.speed"
IDLE_CHOICES = (60, 120, 300, 600, 1800, 0)
SPEED_CHOICES = (1.0, 10.0, 60.0, 120.0, 300.0, 600.0)
LOG_LINES = 80


def compact_log_line(line: str) -> str:
    """``2026-11-25 11:33:31,064 - INFO - app.x - msg`` -> ``11:33:31 INFO app.x: msg``
    (the narrow log view has no room for the date and milliseconds)."""
    parts = line.split(" - ", 3)
    if len(parts) == 4 and len(parts[0]) >= 19:
        return f"{parts[0][11:19]} {parts[1]} {parts[2]}: {parts[3]}"
    return line


def guard_rows(limits: Any) -> list[dict[str, str]]:
    """The risk guards as a person reads them: [{"name", "value"}] ("off" for 0)."""
    if limits is None:
        return []

    def money(v: float) -> str:
        return f"${v:,.0f}" if v else "off"

    def pct(v: float, of: str) -> str:
        return f"{v:g}% {of}".rstrip() if v else "off"

    g = limits
    return [
        {"name": "Algorithm: daily loss", "value": pct(g.algo_max_daily_loss_pct, "of capital")
         + (f" or {money(g.algo_max_daily_loss)}" if g.algo_max_daily_loss else "")},
        {"name": "Algorithm: below its peak", "value": pct(g.algo_max_drawdown_pct, "")},
        {"name": "Algorithm: orders a day", "value": str(g.algo_max_orders_per_day or "off")},
        {"name": "Algorithm: one order's value", "value": money(g.algo_max_order_value)},
        {"name": "Account: daily loss (stops all)",
         "value": pct(g.account_max_daily_loss_pct, "")
         + (f" or {money(g.account_max_daily_loss)}" if g.account_max_daily_loss else "")},
        {"name": "Account: orders in one minute",
         "value": pct(g.account_max_minute_order_pct, "of running capital")
         + (f" or {money(g.account_max_minute_order_value)}"
            if g.account_max_minute_order_value else "")},
        {"name": "Broker refusals", "value": f"wait {g.reject_cooldown_minutes} min, stop "
                                             f"after {g.max_rejections}"},
        {"name": "On a guard stop", "value": "sell the shares" if g.on_guard_stop == "sell"
                                             else "keep the shares"},
    ]


def idle_label(seconds: int) -> str:
    if seconds <= 0:
        return "never"
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


def stored_idle_seconds(system: Any, default: int) -> int:
    try:
        return int(system.get_setting(IDLE_KEY, str(default)) or default)
    except ValueError:
        return default


def stored_demo_speed(system: Any, default: float) -> float:
    try:
        v = float(system.get_setting(SPEED_KEY, str(default)) or default)
    except ValueError:
        return default
    return v if 0 < v <= 10_000 else default


class SettingsViewModel(QObject):
    changed = Signal()
    logChanged = Signal()
    changePinRequested = Signal()
    backRequested = Signal()
    idleChanged = Signal(int)

    def __init__(self, settings: Any, system: Any, clock: Any, mode: str,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._system = system
        self._clock = clock
        self._mode = mode
        self._idle = stored_idle_seconds(system, settings.ui.idle_lock_seconds)
        self._log: list[str] = []
        self._message = ""
        self._guards: list[dict[str, str]] = []

    # --- shown ---------------------------------------------------------------------------
    @Property(int, notify=changed)
    def idleSeconds(self) -> int:
        return self._idle

    @Property(list, constant=True)
    def idleChoices(self) -> list:
        return [{"value": v, "label": idle_label(v)} for v in IDLE_CHOICES]

    def set_message(self, text: str) -> None:
        self._message = text
        self.changed.emit()

    @Property(str, notify=changed)
    def message(self) -> str:
        return self._message

    def set_clock(self, clock: Any) -> None:
        self._clock = clock
        self.changed.emit()

    def set_guards(self, limits: Any) -> None:
        """The engine's risk limits (``engine.guards.limits``), shown read-only."""
        self._guards = guard_rows(limits)
        self.changed.emit()

    @Property(list, notify=changed)
    def guards(self) -> list:
        return list(self._guards)

    @Property(str, constant=True)
    def guardsHint(self) -> str:
        return (f"Set in [risk] of {self._settings.config_path}; they apply at the next start."
                if getattr(self._settings, "config_path", None)
                else "Set in the [risk] section of the config file; they apply at the next start.")

    @Property(bool, notify=changed)
    def isDemo(self) -> bool:
        return self._mode == "demo" and hasattr(self._clock, "set_speed")

    @Property(float, notify=changed)
    def demoSpeed(self) -> float:
        return float(getattr(self._clock, "speed", 1.0))

    @Property(list, constant=True)
    def speedChoices(self) -> list:
        return [{"value": v, "label": f"{v:g}x"} for v in SPEED_CHOICES]

    @Property(str, constant=True)
    def keysText(self) -> str:
        return "set" if self._settings.has_keys else "not set (demo only)"

    @Property(str, constant=True)
    def modeText(self) -> str:
        return self._mode.upper()

    @Property(str, constant=True)
    def aboutText(self) -> str:
        return f"AutoTrader {__version__} \u00b7 data in {self._settings.data_path}"

    @Property(str, notify=logChanged)
    def logText(self) -> str:
        return "\n".join(self._log) if self._log else "(no log lines yet)"

    # --- actions -------------------------------------------------------------------------
    @Slot(int)
    def setIdleSeconds(self, seconds: int) -> None:
        if seconds < 0:
            return
        self._idle = int(seconds)
        self._system.set_setting(IDLE_KEY, str(self._idle))
        self.idleChanged.emit(self._idle)
        self.changed.emit()

    @Slot(float)
    def setDemoSpeed(self, speed: float) -> None:
        if not self.isDemo or not 0 < speed <= 10_000:
            return
        self._clock.set_speed(float(speed))
        self._system.set_setting(SPEED_KEY, repr(float(speed)))
        logger.info("demo speed set to %gx", speed)
        self.changed.emit()

    @Slot()
    def refreshLog(self) -> None:
        path = Path(self._settings.log_path) / LOG_FILENAME
        self._log = [compact_log_line(line)[:200] for line in tail(path, LOG_LINES)]
        self.logChanged.emit()

    @Slot()
    def changePin(self) -> None:
        self._message = ""
        self.changePinRequested.emit()

    @Slot()
    def back(self) -> None:
        self.backRequested.emit()
