"""What the lock screen needs before the rest of the window exists (issue 15, first frame).

The window's first frame is the PIN pad (``MainWindow(..., lock_only=True)``). It needs three
settings of the system DB and a header to show in its portfolio strip; the rest (the real
system store with sqlite-utils and its migrations, the other pages and view models, the
engine) comes right after that frame (``MainWindow.finish``, ``app.ui.app.start_window``).

- ``EarlySettings``: what ``PinGuard`` asks of the system store (``get_setting``,
  ``set_setting``, ``atomic``). It answers reads from one plain sqlite3 read of the settings
  table until the real store is attached, then passes everything to that store. A write
  before then (the PIN hash check runs on its own thread, never the GUI's) waits for the
  store; the same PinGuard and pad serve the whole run, so nothing typed is lost.
- ``EarlyHeader``: the header's texts before the engine exists, exactly what
  ``HeaderViewModel`` shows then, without importing it (it imports the ``db`` package).
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from PySide6.QtCore import Property, QObject, Signal

from app.ui import format as fmt
from db import settings_peek

WRITE_WAIT_S = 60.0  # a write waits this long for the real store (the disk may be slow)

class StoreNotOpenError(RuntimeError):
    pass


class EarlySettings:
    """The system store's settings for ``PinGuard``, before and after the store opens."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = dict(values)
        self._store: Any = None
        self._ready = threading.Event()

    @classmethod
    def read(cls, path: str | Path) -> EarlySettings:
        """From the DB file at ``path``; raises ``sqlite3.Error`` when it cannot be read."""
        return cls(settings_peek.read_settings(path))

    def attach(self, store: Any) -> None:
        """The real system store, open and migrated: every call goes to it from now on."""
        self._store = store
        self._ready.set()

    @property
    def store(self) -> Any:
        return self._store

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        store = self._store
        if store is not None:
            return store.get_setting(key, default)
        value = self._values.get(key)
        return default if value is None else value

    def _open_store(self) -> Any:
        if self._store is None:
            if threading.current_thread() is threading.main_thread():
                # The store is attached on this thread: waiting here would never end.
                raise StoreNotOpenError("the system DB is not open yet")
            if not self._ready.wait(WRITE_WAIT_S):
                raise StoreNotOpenError("the system DB did not open")
        return self._store

    def set_setting(self, key: str, value: str) -> None:
        self._open_store().set_setting(key, value)

    def atomic(self) -> AbstractContextManager[Any]:
        return self._open_store().atomic()


class EarlyHeader(QObject):
    """The header's texts before the engine and ``HeaderViewModel`` exist (the lock page's
    strip reads these; the window hands it the real view model once it is built)."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)

    # As ``HeaderViewModel(None, None, mode)`` shows them: no account, no clock yet.
    valueText = Property(str, lambda self: fmt.money(None), notify=changed)
    freeText = Property(str, lambda self: fmt.money(None), notify=changed)
    todayLabel = Property(str, lambda self: "Today", notify=changed)
    todayText = Property(str, lambda self: "\u2014", notify=changed)
    todaySign = Property(int, lambda self: 0, notify=changed)
    countText = Property(str, lambda self: "", notify=changed)
    nyText = Property(str, lambda self: "NYSE", notify=changed)
    marketOpen = Property(bool, lambda self: False, notify=changed)
    marketText = Property(str, lambda self: "starting\u2026", notify=changed)
    haltedText = Property(str, lambda self: "", notify=changed)
    streamState = Property(str, lambda self: "connecting", notify=changed)
    streamText = Property(str, lambda self: "connecting", notify=changed)
