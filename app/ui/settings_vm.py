"""Settings screen: change the PIN, idle lock time, demo speed, the risk guards, the kiosk's
screen rotation; key status, latest log lines.

Choices are stored in the system DB's settings table (``ui.idle_lock_seconds``,
``demo.speed``) and win over the config file's defaults on the next start, unless an
environment variable or flag set them explicitly. Keys are only ever shown as set / not set.
The risk guards are changed through the engine (guard_edit_vm.py). The rotation is written
into the config file's ``[ui] rotation``, which the kiosk's service applies (picture and
touch together) when the window starts (app/ops/display.py ``guard``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import Property, QObject, Signal, Slot

from app import __version__
from app.config_write import ConfigWriteError, set_value
from app.logging_setup import LOG_FILENAME, tail
from app.ui.guard_edit_vm import GuardEditViewModel

logger = logging.getLogger(__name__)

IDLE_KEY = "ui.idle_lock_seconds"
SPEED_KEY = "demo.speed"
IDLE_CHOICES = (60, 120, 300, 600, 1800, 0)
SPEED_CHOICES = (1.0, 10.0, 60.0, 120.0, 300.0, 600.0)
ROTATIONS = (0, 90, 180, 270)
LOG_LINES = 80


def compact_log_line(line: str) -> str:
    """``2026-11-25 11:33:31,064 - INFO - app.x - msg`` -> ``11:33:31 INFO app.x: msg``
    (the narrow log view has no room for the date and milliseconds)."""
    parts = line.split(" - ", 3)
    if len(parts) == 4 and len(parts[0]) >= 19:
        return f"{parts[0][11:19]} {parts[1]} {parts[2]}: {parts[3]}"
    return line


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
    restartRequested = Signal()  # close the window: the kiosk's service starts it again

    def __init__(self, settings: Any, system: Any, clock: Any, mode: str,
                 parent: QObject | None = None, env: Mapping[str, str] | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._system = system
        self._clock = clock
        self._mode = mode
        self._idle = stored_idle_seconds(system, settings.ui.idle_lock_seconds)
        self._log: list[str] = []
        self._message = ""
        self._message_bad = False
        self._guard_edit = GuardEditViewModel(self)
        self.guard_edit = self._guard_edit  # for the window's wiring (PIN, stop at close)
        self._guard_edit.saved.connect(self.set_message)
        self._guard_edit.failed.connect(self.set_refusal)
        self._guard_edit.written.connect(self._written)
        self._rotation = int(getattr(settings.ui, "rotation", 0))
        self._rotation_note = ""
        self._rotation_saved = False
        self._env = os.environ if env is None else env

    # --- shown ---------------------------------------------------------------------------
    @Property(int, notify=changed)
    def idleSeconds(self) -> int:
        return self._idle

    @Property(list, constant=True)
    def idleChoices(self) -> list:
        return [{"value": v, "label": idle_label(v)} for v in IDLE_CHOICES]

    def set_message(self, text: str, bad: bool = False) -> None:
        self._message, self._message_bad = text, bad
        self.changed.emit()

    def set_refusal(self, text: str) -> None:
        self.set_message(text, bad=True)

    @Property(str, notify=changed)
    def message(self) -> str:
        return self._message

    @Property(bool, notify=changed)
    def messageBad(self) -> bool:
        """The message says something was not done (shown in the warning colour)."""
        return self._message_bad

    def set_clock(self, clock: Any) -> None:
        self._clock = clock
        self.changed.emit()

    def set_engine(self, engine: Any) -> None:
        """The running engine: its clock, and its risk guards to show and change."""
        self.set_clock(getattr(engine, "clock", None))
        self._guard_edit.set_engine(engine)

    @Property(QObject, constant=True)
    def guardEdit(self) -> QObject:
        return self._guard_edit

    @Property(str, constant=True)
    def guardsHint(self) -> str:
        where = getattr(self._settings, "config_path", "") or "the config file"
        return (f"Tap a value to change it: it applies at once and is kept. [risk] in {where} "
                "gives the values at the first start (a later edit there wins).")

    # --- the kiosk's screen rotation -----------------------------------------------------
    @Property(int, notify=changed)
    def rotation(self) -> int:
        return self._rotation

    @Property(list, constant=True)
    def rotationChoices(self) -> list:
        return [{"value": d, "label": f"{d}\u00b0"} for d in ROTATIONS]

    @Property(str, notify=changed)
    def rotationNote(self) -> str:
        if self._rotation_note:
            return self._rotation_note
        return ("Turns the kiosk's picture and touch together; it applies when the window "
                "starts on the Pi (a desktop turns its own screen).")

    @Property(bool, notify=changed)
    def canRestart(self) -> bool:
        """Under the kiosk's service (systemd starts the window again when it closes)."""
        return self._rotation_saved and bool(self._env.get("INVOCATION_ID")) \
            and bool(getattr(self._settings.ui, "kiosk", False))

    @Slot(int)
    def setRotation(self, degrees: int) -> None:
        if degrees not in ROTATIONS or degrees == self._rotation:
            return
        env_name = "AUTOTRADER_UI_ROTATION"
        if self._env.get(env_name):
            self._rotation_note = (f"{env_name}={self._env[env_name]} in the environment sets "
                                   "it (e.g. /etc/autotrader/autotrader.env): change it there.")
            self.changed.emit()
            return
        path = Path(getattr(self._settings, "config_path", "") or "")
        if not str(path):
            self._rotation_note = "No config file is in use: set [ui] rotation by hand."
            self.changed.emit()
            return
        try:
            set_value(path, "ui", "rotation", int(degrees))
        except ConfigWriteError as e:
            self._rotation_note = f"Not saved: {e}"
            self.changed.emit()
            return
        logger.warning("screen rotation set to %d degrees on the Settings screen (in %s)",
                       degrees, path)
        self._rotation, self._rotation_saved = int(degrees), True
        self._rotation_note = (f"Saved ({degrees}\u00b0 in {path}). The kiosk turns the "
                               "screen and touch when the window restarts.")
        self.changed.emit()

    @Slot()
    def restartWindow(self) -> None:
        if self.canRestart:
            logger.warning("window restarted from Settings (screen rotation)")
            self.restartRequested.emit()

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
    # Both apply at once and are stored off the GUI thread (the write may wait up to 5 s for
    # the DB's write lock while another program holds it); a write that fails is said.
    @Slot(int)
    def setIdleSeconds(self, seconds: int) -> None:
        if seconds < 0:
            return
        self._idle = int(seconds)
        self._guard_edit.write_setting(self._system, IDLE_KEY, str(self._idle))
        self.idleChanged.emit(self._idle)
        self.changed.emit()

    @Slot(float)
    def setDemoSpeed(self, speed: float) -> None:
        if not self.isDemo or not 0 < speed <= 10_000:
            return
        self._clock.set_speed(float(speed))
        self._guard_edit.write_setting(self._system, SPEED_KEY, repr(float(speed)))
        logger.info("demo speed set to %gx", speed)
        self.changed.emit()

    @Slot(str, str, str)
    def _written(self, key: str, value: str, error: str) -> None:
        if not error:
            return
        what = {IDLE_KEY: "Lock after idle", SPEED_KEY: "Demo clock speed"}.get(key, key)
        self.set_refusal(f"{what} applies now but was not saved ({error}): the next start "
                         "uses the previous choice. Tap it again once the database is free.")

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
