"""The PIN: a salted slow hash in the system DB, and a lockout that survives restarts.

Qt-free so the engine's tools (doctor, backup) and plain tests can use it. The PIN itself is
never stored or logged; only ``scrypt$N$r$p$salt$hash`` is. Wrong PINs count up; from the
5th wrong try in a row the pad locks for 30 s, doubling with every further miss (capped at a
day). The count and the lock's end are stored, so restarting the app does not reset them.
Time comes from an injected function so tests do not sleep.

Strength (README, "Security"): a NEW PIN is 6 to 8 digits. The scrypt cost (N=2**15, r=8:
32 MiB and ~0.1 s a try on a desktop core, ~0.4 s on a Raspberry Pi 4) is what a PIN pad on a
Pi can afford; with 10**6 six-digit PINs an offline search of a stolen hash costs ~28
core-hours, memory-hard (32 MiB a guess), against ~17 core-minutes for 10**4 four-digit
ones. Raising the cost instead until 4 digits took days would make each unlock on the Pi
take minutes. PINs of 4 or 5 digits set before this rule keep working; a successful unlock
with one says so (``PinCheck.upgrade``) so the UI can offer a longer one. A hash made with a
lower cost than today's is re-made at the next successful unlock.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the lock screen's module needs no DB module loaded to import this one
    from db.system import SystemStore

logger = logging.getLogger(__name__)

PIN_HASH_KEY = "security.pin_hash"
FAILURES_KEY = "security.pin_failures"
LOCKED_UNTIL_KEY = "security.pin_locked_until"

PIN_RE = re.compile(r"^[0-9]{4,8}$")  # what an unlock accepts (older PINs had 4 or 5 digits)
NEW_PIN_RE = re.compile(r"^[0-9]{6,8}$")  # what a new PIN must be
MIN_NEW_DIGITS = 6
FREE_TRIES = 5
FIRST_LOCK_SECONDS = 30.0
MAX_LOCK_SECONDS = 86_400.0

# scrypt cost: 2**15 * 8 * 128 B = 32 MiB and ~0.1 s per check on a desktop core; slow
# enough to make guessing a stolen hash expensive, quick enough for a PIN pad on a Pi.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1


class PinFormatError(ValueError):
    """A new PIN is not 6 to 8 digits."""


@dataclass(frozen=True)
class PinCheck:
    """The outcome of one PIN attempt."""

    ok: bool
    locked_for: float = 0.0  # seconds until the pad accepts a try again (0 = not locked)
    tries_left: int = FREE_TRIES  # wrong tries left before the next lock
    message: str = ""
    upgrade: bool = False  # right, but shorter than a new PIN may be: offer to change it


def check_format(pin: str) -> str:
    """``pin`` if it can be a NEW PIN (6 to 8 digits), else ``PinFormatError``."""
    if not isinstance(pin, str) or not NEW_PIN_RE.match(pin):
        raise PinFormatError(f"A PIN is {MIN_NEW_DIGITS} to 8 digits.")
    return pin


def hash_is_current(stored: str) -> bool:
    """True when ``stored`` was made with today's scrypt cost (or more)."""
    try:
        kind, n, r, p, _, _ = stored.split("$")
        return kind == "scrypt" and int(n) >= SCRYPT_N and int(r) >= SCRYPT_R
    except ValueError:
        return False


def hash_pin(pin: str, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
             p: int = SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt_hex$hash_hex`` for ``pin`` (a fresh random salt by default)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, maxmem=128 * 1024 * 1024,
                            dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_hash(pin: str, stored: str) -> bool:
    """True when ``pin`` matches ``stored`` (constant-time compare)."""
    try:
        kind, n, r, p, salt_hex, hash_hex = stored.split("$")
        if kind != "scrypt":
            return False
        candidate = hash_pin(pin, bytes.fromhex(salt_hex), int(n), int(r), int(p))
    except (ValueError, TypeError):
        logger.error("the stored PIN hash is malformed; the PIN cannot be checked")
        return False
    return hmac.compare_digest(candidate.split("$")[-1], hash_hex)


def lock_seconds(failures: int) -> float:
    """How long the pad locks after ``failures`` wrong tries in a row (0 below the limit)."""
    if failures < FREE_TRIES:
        return 0.0
    return min(FIRST_LOCK_SECONDS * 2 ** (failures - FREE_TRIES), MAX_LOCK_SECONDS)


class PinGuard:
    """PIN set-up, checks and lockout, persisted in the system DB's settings table."""

    def __init__(self, system: SystemStore, now: Callable[[], float] = time.time) -> None:
        self._system = system
        self._now = now
        # The count and lock of wrong tries that could not be saved (the DB locked by another
        # process, a full disk): they count all the same, and are saved with the next try.
        self._unsaved: tuple[int, float] | None = None

    # --- state ---------------------------------------------------------------------------
    @property
    def is_set(self) -> bool:
        return bool(self._system.get_setting(PIN_HASH_KEY))

    @property
    def failures(self) -> int:
        try:
            stored = int(self._system.get_setting(FAILURES_KEY, "0") or 0)
        except ValueError:
            return FREE_TRIES  # a damaged counter errs on the safe side
        return max(stored, self._unsaved[0]) if self._unsaved else stored

    def locked_for(self) -> float:
        """Seconds left on the current lock (0 when the pad takes tries)."""
        try:
            until = float(self._system.get_setting(LOCKED_UNTIL_KEY, "0") or 0)
        except ValueError:
            until = self._now() + FIRST_LOCK_SECONDS
        if self._unsaved:
            until = max(until, self._unsaved[1])
        left = until - self._now()
        # A clock set backwards must not turn a 30 s lock into hours: never more than the
        # lock the current count earns.
        return max(0.0, min(left, lock_seconds(self.failures)))

    # --- actions -------------------------------------------------------------------------
    def set_pin(self, pin: str) -> None:
        """Store a new PIN (replacing any old one) and clear the failure count."""
        check_format(pin)
        with self._system.atomic():
            self._system.set_setting(PIN_HASH_KEY, hash_pin(pin))
            self._system.set_setting(FAILURES_KEY, "0")
            self._system.set_setting(LOCKED_UNTIL_KEY, "0")
        logger.info("PIN set")

    def check(self, pin: str) -> PinCheck:
        """Try ``pin``. While locked, the try is refused without being checked or counted."""
        left = self.locked_for()
        if left > 0:
            return PinCheck(False, locked_for=left, tries_left=0,
                            message=f"Locked: try again in {_duration(left)}.")
        stored = self._system.get_setting(PIN_HASH_KEY)
        if not stored:
            return PinCheck(False, message="No PIN is set yet.")
        if isinstance(pin, str) and PIN_RE.match(pin) and verify_hash(pin, stored):
            # Housekeeping only: a DB that takes no writes now must not keep the owner out.
            if self.failures:
                self._unsaved = None
                self._save({FAILURES_KEY: "0", LOCKED_UNTIL_KEY: "0"}, "the reset try count")
            if not hash_is_current(stored) and self._save(
                    {PIN_HASH_KEY: hash_pin(pin)}, "the PIN hash at today's cost"):
                logger.info("PIN hash re-made with the current cost")
            if len(pin) < MIN_NEW_DIGITS:
                return PinCheck(True, upgrade=True,
                                message=f"Your PIN has {len(pin)} digits: choose one of "
                                        f"{MIN_NEW_DIGITS} to 8 in Settings (Change PIN).")
            return PinCheck(True, message="")
        failures = self.failures + 1
        lock = lock_seconds(failures)
        until = self._now() + lock if lock else 0
        if self._save({FAILURES_KEY: str(failures), LOCKED_UNTIL_KEY: repr(until)},
                      "the wrong-PIN count"):
            self._unsaved = None
        else:
            self._unsaved = (failures, until)
        logger.warning("wrong PIN (%d in a row)%s", failures,
                       f"; locked for {lock:.0f} s" if lock else "")
        if lock:
            return PinCheck(False, locked_for=lock, tries_left=0,
                            message=f"Wrong PIN. Locked for {_duration(lock)}.")
        tries_left = FREE_TRIES - failures
        return PinCheck(False, tries_left=tries_left,
                        message=f"Wrong PIN. {tries_left} "
                                f"{'try' if tries_left == 1 else 'tries'} left.")


    def _save(self, values: dict[str, str], what: str) -> bool:
        """Write ``values`` in one transaction; False (logged) when the DB takes no writes
        now (locked by another process, a full disk). Other errors are raised."""
        try:
            with self._system.atomic():
                for key, value in values.items():
                    self._system.set_setting(key, value)
            return True
        except sqlite3.OperationalError as e:
            text = str(e).lower()
            if "locked" not in text and "busy" not in text and "full" not in text:
                raise
            logger.error("%s is not saved: %s (kept in memory, saved with the next try)",
                         what, e)
            return False


def _duration(seconds: float) -> str:
    s = int(seconds + 0.999)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def confirm_live_in_terminal(guard: PinGuard, interactive: bool,
                             ask: Callable[[str], str]) -> tuple[bool, str]:
    """The headless form of the live-mode PIN confirmation.

    Live trading needs the PIN, as in the window. Without a terminal to type it in (a service),
    the run is refused rather than trading real money unconfirmed. ``ask`` reads a line without
    echo (``getpass.getpass``). Returns (confirmed, message for the user).
    """
    if not interactive:
        return False, ("LIVE mode needs your PIN before it trades real money, and there is no "
                       "terminal to type it in: run it in a terminal, or start the window "
                       "(autotrader run) and confirm there.")
    if not guard.is_set:
        return False, ("LIVE mode needs a PIN and none is set yet: start the window once "
                       "(autotrader run) to choose one, or run in paper mode.")
    for _ in range(FREE_TRIES):
        try:
            pin = ask("LIVE mode trades REAL MONEY. PIN to confirm: ")
        except (EOFError, KeyboardInterrupt):
            return False, "LIVE mode not confirmed."
        result = guard.check(pin.strip())
        if result.ok:
            return True, "LIVE mode confirmed."
        print(result.message, file=sys.stderr)
        if result.locked_for > 0:
            return False, result.message
    return False, "LIVE mode not confirmed."
