"""The risk guards on the Settings screen: each limit's value, tapped to change it with the
number pad (or keep/sell for the guard stop's choice).

No trading rule lives here: the engine validates (``check_guard_limit``), decides whether a
change loosens a limit, stores it before applying it and logs it (``set_guard_limit``). This
only holds what is being typed and asks the window for the PIN when the engine says a LIVE
change loosens a limit (``pinRequested``; the window calls ``saveConfirmed`` after the PIN).
A change made elsewhere (``autotrader guards set``) reaches the screen through the engine's
``on_guards_changed``, from an engine thread, handed to the GUI thread by a queued signal.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Property, QObject, Signal, Slot

from app.engine.guard_edit import SPECS, shown
from app.engine.model import EngineError

logger = logging.getLogger(__name__)

MAX_CHARS = 12


def range_text(name: str) -> str:
    s = SPECS[name]
    unit = {"pct": " %", "money": " dollars", "minutes": " minutes"}.get(s.kind, "")
    whole = " (a whole number)" if s.kind in ("count", "minutes") else ""
    off = "; 0 turns it off" if s.zero_off else ""
    return f"{s.minimum:g} to {s.maximum:,.0f}{unit}{whole}{off}"


class GuardEditViewModel(QObject):
    changed = Signal()
    pinRequested = Signal(str)  # the purpose shown on the PIN pad
    saved = Signal(str)  # a line for the Settings screen's message
    _elsewhere = Signal()  # a change from another thread (queued to this one)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine: Any = None
        self._rows: list[dict[str, Any]] = []
        self._name = ""
        self._text = ""
        self._error = ""
        self._pending: tuple[str, str] | None = None
        self._elsewhere.connect(self.reload)

    def set_engine(self, engine: Any) -> None:
        self._engine = engine
        if hasattr(engine, "add_listener"):
            engine.add_listener(self)
        self.reload()

    def on_guards_changed(self, change: Any) -> None:  # engine listener, any thread
        self._elsewhere.emit()

    @Slot()
    def reload(self) -> None:
        if self._engine is None or not hasattr(self._engine, "guard_limits"):
            self._rows = []
        else:
            self._rows = [{"name": r["name"], "label": r["label"], "kind": r["kind"],
                           "shown": r["shown"], "edited": bool(r["edited"]),
                           "config": shown(r["name"], r["config"])}
                          for r in self._engine.guard_limits()]
        self.changed.emit()

    # --- shown ---------------------------------------------------------------------------
    @Property(list, notify=changed)
    def rows(self) -> list:
        return list(self._rows)

    @Property(str, notify=changed)
    def editName(self) -> str:
        return self._name

    @Property(str, notify=changed)
    def editLabel(self) -> str:
        return SPECS[self._name].label if self._name else ""

    @Property(str, notify=changed)
    def editKind(self) -> str:
        return SPECS[self._name].kind if self._name else ""

    @Property(str, notify=changed)
    def editText(self) -> str:
        return self._text

    @Property(str, notify=changed)
    def editRange(self) -> str:
        return range_text(self._name) if self._name and self.editKind != "choice" else ""

    @Property(str, notify=changed)
    def editNow(self) -> str:
        row = next((r for r in self._rows if r["name"] == self._name), None)
        if row is None:
            return ""
        return f"Now {row['shown']}; the config file says {row['config']}."

    @Property(bool, notify=changed)
    def editOffAllowed(self) -> bool:
        return bool(self._name) and SPECS[self._name].zero_off

    @Property(str, notify=changed)
    def editError(self) -> str:
        return self._error

    # --- actions -------------------------------------------------------------------------
    @Slot(str)
    def edit(self, name: str) -> None:
        if name not in SPECS or self._engine is None:
            return
        row: dict[str, Any] = next(
            (r for r in self._engine.guard_limits() if r["name"] == name), {})
        value = row.get("value")
        self._name, self._error, self._pending = name, "", None
        self._text = (str(value) if isinstance(value, str)
                      else f"{value:g}" if value is not None else "")
        self.changed.emit()

    @Slot(str)
    def key(self, ch: str) -> None:
        if not self._name or len(self._text) >= MAX_CHARS or not (ch.isdigit() or ch == "."):
            return
        if ch == "." and ("." in self._text or self.editKind in ("count", "minutes")):
            return
        self._text = ("0" if self._text in ("", "0") and ch == "." else
                      "" if self._text == "0" else self._text) + ch
        self._error = ""
        self.changed.emit()

    @Slot()
    def backspace(self) -> None:
        self._text, self._error = self._text[:-1], ""
        self.changed.emit()

    @Slot()
    def turnOff(self) -> None:
        if self.editOffAllowed:
            self._text, self._error = "0", ""
            self.changed.emit()

    @Slot(str)
    def choose(self, value: str) -> None:
        if self.editKind == "choice":
            self._text, self._error = value, ""
            self.changed.emit()

    @Slot()
    def cancel(self) -> None:
        self._name, self._text, self._error, self._pending = "", "", "", None
        self.changed.emit()

    @Slot()
    def save(self) -> None:
        """Check with the engine; a LIVE loosening first asks for the PIN."""
        if not self._name or self._engine is None:
            return
        name, text = self._name, self._text or ""
        try:
            old, new, loosens = self._engine.check_guard_limit(name, text)
        except EngineError as e:
            self._error = str(e)
            self.changed.emit()
            return
        if loosens and getattr(self._engine, "mode", "") == "live":
            self._pending = (name, text)
            why = (f"Loosen a risk guard? {SPECS[name].label}: {shown(name, old)} \u2192 "
                   f"{shown(name, new)}.")
            self.pinRequested.emit(why)
            return
        self._apply(name, text, confirmed=False)

    @Slot()
    def saveConfirmed(self) -> None:
        """The PIN was confirmed for the pending change."""
        pending, self._pending = self._pending, None
        if pending is not None:
            self._apply(*pending, confirmed=True)

    def _apply(self, name: str, text: str, confirmed: bool) -> None:
        try:
            ch = self._engine.set_guard_limit(name, text, confirmed=confirmed,
                                              source="on the Settings screen")
        except EngineError as e:
            self._error = str(e)
            self.changed.emit()
            return
        except Exception as e:  # noqa: BLE001 - a DB that cannot be written: said, not lost
            logger.exception("risk guard change failed")
            self._error = f"not saved: {e}"
            self.changed.emit()
            return
        self._name, self._text, self._error = "", "", ""
        self.reload()
        self.saved.emit(f"{SPECS[name].label}: {shown(name, ch.old)} \u2192 "
                        f"{shown(name, ch.new)}. Saved; applies now.")
