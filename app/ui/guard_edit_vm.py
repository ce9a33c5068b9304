"""The risk guards on the Settings screen: each limit's value, tapped to change it with the
number pad (or keep/sell for the guard stop's choice).

No trading rule lives here: the engine validates (``check_guard_limit``), decides whether a
change loosens a limit, stores it before applying it and logs it (``set_guard_limit``). This
only holds what is being typed and asks the window for the PIN when the engine says a LIVE
change loosens a limit (``pinRequested``; the window calls ``saveConfirmed`` after the PIN).
A change made elsewhere (``autotrader guards set``) reaches the screen through the engine's
``on_guards_changed``: the limits are read on the thread that made the change (the control
socket's, a plain Python thread) and posted to a ``GuiInbox`` (no Qt signal is emitted from a
thread Qt did not start: PYSIDE-3124, see inbox.py). The GUI thread never takes the engine's
lock here: it shows and checks against the limits last read (the engine checks again, PIN
rule included, when it makes the change), so a core lock held for seconds (stop all waiting
for a DB another program holds) cannot freeze the screen.

Saving runs on a thread of its own ("guard-edit"), never the GUI thread nor the engine
worker's: storing a change waits for SQLite's write lock (up to its 5 s busy timeout when
another program holds it), and meanwhile the window must answer, the panic button included
(its stop all goes to the engine worker, which must not be queued behind a change). While a
change is being saved the editor says so, Save is off (no second submit) and Close hides the
editor; the result comes back by a queued signal: saved (the Settings message), or refused
(in the editor, the typed value kept for a retry, or in the Settings message if it was closed).
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Property, QObject, QThread, Signal, Slot

from app.engine.guard_edit import SPECS, loosens, parse_value, shown
from app.engine.model import EngineError
from app.ui.inbox import GuiInbox

logger = logging.getLogger(__name__)

MAX_CHARS = 12


def range_text(name: str) -> str:
    s = SPECS[name]
    unit = {"pct": " %", "money": " dollars", "minutes": " minutes"}.get(s.kind, "")
    whole = " (a whole number)" if s.kind in ("count", "minutes") else ""
    off = "; 0 turns it off" if s.zero_off else ""
    return f"{s.minimum:g} to {s.maximum:,.0f}{unit}{whole}{off}"


def read_rows(engine: Any) -> list[dict[str, Any]]:
    """The engine's limits as the screen shows them (takes the engine's lock: not called on
    the GUI thread once the engine runs)."""
    if engine is None or not hasattr(engine, "guard_limits"):
        return []
    return [{"name": r["name"], "label": r["label"], "kind": r["kind"], "value": r["value"],
             "shown": r["shown"], "edited": bool(r["edited"]),
             "config": shown(r["name"], r["config"])}
            for r in engine.guard_limits()]


class GuardSaver(QObject):
    """On the guard-edit thread: the engine's ``set_guard_limit``, and the Settings screen's
    stored choices (idle lock, demo speed); each outcome as a signal."""

    done = Signal(str, str, str, str, object)  # name, refusal ('' = saved), old and new as
    # shown, the limits read after it (a list of rows, or None)
    written = Signal(str, str, str)  # setting key, value, error ('' = stored)

    def __init__(self, engine: Any) -> None:
        super().__init__()
        self._engine = engine

    @Slot(object, str, str)
    def write(self, system: Any, key: str, value: str) -> None:
        try:
            system.set_setting(key, value)
        except Exception as e:  # noqa: BLE001 - a DB that cannot be written: said on screen
            logger.warning("setting %s=%s not stored: %s", key, value, e)
            self.written.emit(key, value, str(e) or type(e).__name__)
            return
        self.written.emit(key, value, "")

    @Slot()
    def finish(self) -> None:
        """Queued after every change and write asked for: they are done; the thread ends."""
        QThread.currentThread().quit()

    @Slot(str, str, bool)
    def save(self, name: str, text: str, confirmed: bool) -> None:
        try:
            ch = self._engine.set_guard_limit(name, text, confirmed=confirmed,
                                              source="on the Settings screen")
        except EngineError as e:
            self.done.emit(name, str(e) or "refused", "", "", None)
            return
        except Exception as e:  # noqa: BLE001 - a DB that cannot be written: said, not lost
            logger.exception("risk guard change failed")
            self.done.emit(name, f"not saved: {e}", "", "", None)
            return
        self.done.emit(name, "", shown(name, ch.old), shown(name, ch.new),
                       read_rows(self._engine))


class GuardEditViewModel(QObject):
    changed = Signal()
    pinRequested = Signal(str)  # the purpose shown on the PIN pad
    saved = Signal(str)  # a line for the Settings screen's message
    failed = Signal(str)  # a refusal after the editor was closed (the Settings message)
    _request = Signal(str, str, bool)  # to the saver's thread (queued)
    _write = Signal(object, str, str)  # system store, key, value: to the saver's thread
    written = Signal(str, str, str)  # key, value, error ('' = stored): on the GUI thread
    _finish = Signal()  # to the saver's thread, after everything asked for

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine: Any = None
        self._rows: list[dict[str, Any]] = []
        self._name = ""
        self._text = ""
        self._error = ""
        self._pending: tuple[str, str] | None = None
        self._saving = ""  # the limit whose change is being saved
        self._thread: QThread | None = None
        self._saver: GuardSaver | None = None
        self._orphans: list[tuple[QThread, GuardSaver]] = []
        self._inbox = GuiInbox(self, interval_ms=100)  # changes made on other threads

    def set_engine(self, engine: Any) -> None:
        self.stop()  # a saver bound to an engine before this one
        self._engine = engine
        if hasattr(engine, "add_listener"):
            engine.add_listener(self)
        self.reload()

    def on_guards_changed(self, change: Any) -> None:  # engine listener, any thread
        engine = self._engine
        if engine is not None:
            self._inbox.post(self._set_rows, read_rows(engine))

    @Slot()
    def reload(self) -> None:
        """Read the limits now (at attach, before the engine runs)."""
        self._set_rows(read_rows(self._engine))

    def _set_rows(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows
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

    @Property(bool, notify=changed)
    def saving(self) -> bool:
        """A change is being saved (Save is off until it comes back)."""
        return bool(self._saving)

    # --- actions -------------------------------------------------------------------------
    @Slot(str)
    def edit(self, name: str) -> None:
        if name not in SPECS or self._engine is None:
            return
        row: dict[str, Any] = next((r for r in self._rows if r["name"] == name), {})
        value = row.get("value")
        self._name, self._error, self._pending = name, "", None
        self._text = (str(value) if isinstance(value, str)
                      else f"{value:g}" if value is not None else "")
        self.changed.emit()

    @Slot(str)
    def key(self, ch: str) -> None:
        if not self._name or self._saving or len(self._text) >= MAX_CHARS or not (ch.isdigit() or ch == "."):
            return
        if ch == "." and ("." in self._text or self.editKind in ("count", "minutes")):
            return
        self._text = ("0" if self._text in ("", "0") and ch == "." else
                      "" if self._text == "0" else self._text) + ch
        self._error = ""
        self.changed.emit()

    @Slot()
    def backspace(self) -> None:
        if self._saving:
            return
        self._text, self._error = self._text[:-1], ""
        self.changed.emit()

    @Slot()
    def turnOff(self) -> None:
        if self.editOffAllowed and not self._saving:
            self._text, self._error = "0", ""
            self.changed.emit()

    @Slot(str)
    def choose(self, value: str) -> None:
        if self.editKind == "choice" and not self._saving:
            self._text, self._error = value, ""
            self.changed.emit()

    @Slot()
    def cancel(self) -> None:
        """Cancel, or Close while a change is being saved: the editor goes, the change
        goes on and its outcome is the Settings message."""
        if self._saving and self._saving == self._name:
            self.saved.emit(f"Saving {SPECS[self._name].label}\u2026")
        self._name, self._text, self._error, self._pending = "", "", "", None
        self.changed.emit()

    @Slot()
    def save(self) -> None:
        """Check with the engine; a LIVE loosening first asks for the PIN."""
        if not self._name or self._engine is None or self._saving:
            return  # one change at a time: Save is off while one is being saved
        name, text = self._name, self._text or ""
        row = next((r for r in self._rows if r["name"] == name), None)
        try:  # the engine's own rules, against the limits last read (it checks again)
            new = parse_value(name, text)
        except EngineError as e:
            self._error = str(e)
            self.changed.emit()
            return
        old = row["value"] if row is not None else new
        if loosens(name, old, new) and getattr(self._engine, "mode", "") == "live":
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
        """Hand the change to the guard-edit thread; ``_done`` gets the outcome."""
        if self._saving:
            return
        self._start()
        self._saving, self._error = name, ""
        self.changed.emit()
        self._request.emit(name, text, confirmed)

    def write_setting(self, system: Any, key: str, value: str) -> None:
        """``system.set_setting(key, value)`` on the guard-edit thread (it may wait for the
        DB's write lock); the outcome comes back as ``written``."""
        self._start()
        self._write.emit(system, key, value)

    def _start(self) -> None:
        if self._thread is not None:
            return
        self._saver = GuardSaver(self._engine)
        self._thread = QThread()
        self._thread.setObjectName("guard-edit")
        self._saver.moveToThread(self._thread)
        self._request.connect(self._saver.save)
        self._write.connect(self._saver.write)
        self._saver.done.connect(self._done)
        self._saver.written.connect(self._written)
        self._finish.connect(self._saver.finish)
        self._thread.start()

    @Slot(str, str, str)
    def _written(self, key: str, value: str, error: str) -> None:
        self.written.emit(key, value, error)

    @Slot(str, str, str, str, object)
    def _done(self, name: str, error: str, old: str, new: str, rows: Any) -> None:
        self._saving = ""
        editing = self._name == name
        if error:
            if editing:
                self._error = error  # the typed value stays: Save again retries
                self.changed.emit()
            else:
                self.changed.emit()
                self.failed.emit(f"{SPECS[name].label}: {error}")
            return
        if editing:
            self._name, self._text, self._error = "", "", ""
        self._set_rows(rows if isinstance(rows, list) else self._rows)
        self.saved.emit(f"{SPECS[name].label}: {old} \u2192 {new}. Saved; applies now.")

    def stop(self, timeout_ms: int = 10_000) -> bool:
        """End the guard-edit thread after the changes and writes already asked for (each
        may wait for the DB's lock). True if it ended within ``timeout_ms``."""
        t, saver = self._thread, self._saver
        if t is None or saver is None:
            return True
        self._thread, self._saver, self._saving = None, None, ""
        self._request.disconnect(saver.save)
        self._write.disconnect(saver.write)
        saver.done.disconnect(self._done)
        saver.written.disconnect(self._written)
        self._finish.emit()  # queued behind them: the thread quits once they are done
        self._finish.disconnect(saver.finish)
        if t.wait(timeout_ms):
            return True
        logger.warning("a risk guard change was still being saved after %d ms", timeout_ms)
        self._orphans.append((t, saver))  # a QThread destroyed while running aborts
        return False
