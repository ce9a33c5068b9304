"""The PIN pad's view model: first-start set-up, unlock, confirm an action, change the PIN.

The digits typed live here, never in QML; QML shows only how many were typed. The checks
themselves are ``app.security.PinGuard``'s. The slow hash (scrypt, tenths of a second on a Pi)
runs on a short-lived thread so the screen stays responsive; the pad shows "Checking…".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Property, QObject, QTimer, Signal, Slot

from app.security import NEW_PIN_RE, PinGuard
from app.ui import format as fmt
from app.ui.inbox import GuiInbox

logger = logging.getLogger(__name__)

MAX_DIGITS = 8

# mode -> (title, subtitle)
TEXTS = {
    "setup": ("Choose a PIN", "6 to 8 digits. It unlocks the screen and confirms risky actions."),
    "setup_repeat": ("Repeat the new PIN", "Type the same PIN again."),
    "unlock": ("Enter PIN", "AutoTrader is locked."),
    "confirm": ("Confirm with PIN", ""),
    "change_old": ("Change PIN", "Enter the current PIN."),
    "change_new": ("Change PIN", "Enter the new PIN (6 to 8 digits)."),
    "change_repeat": ("Change PIN", "Repeat the new PIN."),
}


class LockViewModel(QObject):
    changed = Signal()
    unlocked = Signal()
    confirmed = Signal()
    cancelled = Signal()
    pinChanged = Signal()

    def __init__(self, guard: PinGuard, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._guard = guard
        self._mode = "unlock"
        self._digits = ""
        self._first = ""
        self._message = ""
        self._error = False
        self._purpose = ""
        self._locked_for = 0
        self._busy = False
        self._token = 0
        self._then: Callable[[Any], None] | None = None
        self._inbox = GuiInbox(self)  # the hashing thread hands its result back through it
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._update_lock)
        self.start("unlock" if guard.is_set else "setup")

    # --- flow ----------------------------------------------------------------------------
    def start(self, mode: str, purpose: str = "") -> None:
        """Show the pad in ``mode``: 'unlock', 'setup', 'confirm' or 'change_old'."""
        if mode in ("unlock", "confirm", "change_old") and not self._guard.is_set:
            mode = "setup"
        self._mode, self._purpose = mode, purpose
        self._token += 1  # a check still running for the previous prompt is ignored
        self._busy, self._then = False, None
        self._digits = self._first = ""
        self._message, self._error = "", False
        self._update_lock()  # polls on while a lockout counts down
        self.changed.emit()

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def busy(self) -> bool:
        return self._busy

    def _in_background(self, work: Callable[[], Any], then: Callable[[Any], None]) -> None:
        """Run ``work`` (hashing) off the GUI thread, then ``then(result)`` back on it."""
        self._busy, self._then = True, then
        self._message, self._error = "Checking\u2026", False
        self.changed.emit()
        token = self._token

        def run() -> None:
            try:
                result: Any = work()
            except Exception as e:  # noqa: BLE001 - reported on the pad
                logger.exception("PIN hashing failed")
                result = e
            self._inbox.post(self._finish, token, result)

        threading.Thread(target=run, name="pin-hash", daemon=True).start()

    def _finish(self, token: int, result: Any) -> None:
        if token != self._token or not self._busy:
            return
        then, self._then, self._busy = self._then, None, False
        self._message = ""
        if isinstance(result, Exception):
            self._fail(f"The PIN could not be checked or stored: {result}")
            return
        if then is not None:
            then(result)

    @Slot(str)
    def digit(self, d: str) -> None:
        if self._busy or self._locked_for or len(self._digits) >= MAX_DIGITS or not d.isdigit():
            return
        self._digits += d
        if self._error:
            self._message, self._error = "", False
        self.changed.emit()

    @Slot()
    def backspace(self) -> None:
        if self._busy:
            return
        self._digits = self._digits[:-1]
        self.changed.emit()

    @Slot()
    def cancel(self) -> None:
        if self.canCancel:
            self._timer.stop()
            self._digits = ""
            self.cancelled.emit()

    @Slot()
    def submit(self) -> None:
        if self._busy:
            return
        pin, self._digits = self._digits, ""
        m = self._mode
        if m in ("setup", "change_new"):
            if not NEW_PIN_RE.match(pin):
                self._fail("A PIN is 6 to 8 digits.")
                return
            self._first = pin
            self._mode = "setup_repeat" if m == "setup" else "change_repeat"
            self._message, self._error = "", False
        elif m in ("setup_repeat", "change_repeat"):
            if pin != self._first:
                self._mode = "setup" if m == "setup_repeat" else "change_new"
                self._first = ""
                self._fail("The two PINs differ. Start again.")
                return
            self._in_background(lambda: self._guard.set_pin(pin),
                                lambda _result: self._stored(m))
            return
        else:  # unlock, confirm, change_old
            self._in_background(lambda: self._guard.check(pin),
                                lambda result: self._checked(m, result))
            return
        self.changed.emit()

    def _stored(self, mode: str) -> None:
        self._timer.stop()
        self.changed.emit()
        (self.unlocked if mode == "setup_repeat" else self.pinChanged).emit()

    def _checked(self, mode: str, result: Any) -> None:
        self._update_lock()
        if not result.ok:
            self._fail(result.message)
            return
        self._message, self._error = "", False
        if mode == "change_old":
            self._mode = "change_new"
            self.changed.emit()
            return
        self._timer.stop()
        self.changed.emit()
        (self.unlocked if mode == "unlock" else self.confirmed).emit()

    def _fail(self, message: str) -> None:
        self._message, self._error = message, True
        self.changed.emit()

    def _update_lock(self) -> None:
        left = int(self._guard.locked_for() + 0.999)
        if left != self._locked_for:
            self._locked_for = left
            if left == 0 and self._error:
                self._message, self._error = "", False
            self.changed.emit()
        # Poll only while a lockout counts down (only this pad's own check starts one, and
        # it calls here): the pad left up for months read system.db on the GUI thread twice
        # a second for nothing.
        if left > 0:
            if not self._timer.isActive():
                self._timer.start()
        else:
            self._timer.stop()

    # --- what QML shows ------------------------------------------------------------------
    @Property(str, notify=changed)
    def title(self) -> str:
        return TEXTS[self._mode][0]

    @Property(str, notify=changed)
    def subtitle(self) -> str:
        if self._purpose and self._mode in ("confirm", "unlock"):
            return self._purpose
        return TEXTS[self._mode][1]

    @Property(str, notify=changed)
    def message(self) -> str:
        if self._locked_for:
            return f"Too many wrong PINs. Try again in {fmt.wait_time(self._locked_for)}."
        return self._message

    @Property(bool, notify=changed)
    def isError(self) -> bool:
        return self._error or bool(self._locked_for)

    @Property(int, notify=changed)
    def entered(self) -> int:
        return len(self._digits)

    @Property(int, notify=changed)
    def lockedFor(self) -> int:
        return self._locked_for

    @Property(bool, notify=changed)
    def canCancel(self) -> bool:
        return self._mode in ("confirm", "change_old", "change_new", "change_repeat")

    @Property(bool, notify=changed)
    def canSubmit(self) -> bool:
        return not self._busy and not self._locked_for and len(self._digits) >= 4

    @Property(bool, notify=changed)
    def isBusy(self) -> bool:
        return self._busy
