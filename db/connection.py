"""SQLite connections: WAL, a busy timeout, one connection per thread.

sqlite3 connections must not cross threads, so each store hands every thread its own
connection to the same file, keyed by the OS thread id (``threading.get_native_id()``)
rather than a ``threading.local``: a thread Qt started (a QThread running its own event loop)
enters Python with a fresh thread state for every slot it runs, so a ``threading.local``
there is empty each time, and a connection per call piled up (82 connections a minute in the
window, the kiosk's 0.25 MB/s leak). Connections of threads that have ended are closed when
the next one is opened.

"Ended" is asked of the OS (``/proc/self/task/<tid>``), not of ``threading``: under Python
3.13 (Debian 13, the Pi) a Qt thread's dummy ``threading`` entry goes away when the slot
returns while the thread lives on. And the key is the OS id, not ``threading.get_ident()``:
that is the pthread's address, which glibc hands to the next thread as soon as one ends, so a
Qt worker could inherit a dead thread's entry (and its record of which OS thread to ask
about) and have its connection closed under a running query by the next thread that opened
one: the segfault CI hit in ``test_threads.py`` about one run in ten. Linux does not reuse a
thread id until its pid counter wraps.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils
    from sqlite_utils.migrations import Migrations


_HIDDEN_WHILE_LOADING = ("pandas", "numpy")


def _import_sqlite_utils() -> ModuleType:
    """sqlite-utils imports pandas and numpy at import time when they are installed (pandas
    0.3-0.5 s and ~40 MB, numpy 0.1-0.3 s, at every start, a kiosk's lock screen included)
    only to map ``pd.Timestamp`` and numpy scalar types to column types when it creates a
    table from Python values, which AutoTrader never does (its tables are made by SQL in
    db/migrations.py, its rows written by SQL). Each is hidden while sqlite-utils loads,
    unless something already loaded it; a later ``import pandas`` / ``import numpy`` (the
    engine, charts, backtests) works as usual."""
    if "sqlite_utils" in sys.modules:
        import sqlite_utils
        return sqlite_utils
    hidden = [m for m in _HIDDEN_WHILE_LOADING if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None  # type: ignore[assignment]  # import m -> ImportError
    try:
        import sqlite_utils
    finally:
        for m in hidden:
            if m in sys.modules and sys.modules[m] is None:
                del sys.modules[m]
    return sqlite_utils


if not TYPE_CHECKING:  # the checker reads the module's own types from the import above
    sqlite_utils = _import_sqlite_utils()  # the same module, loaded without pandas

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000

# Each connection's page cache, KiB. SQLite's default is 2000 KiB per connection; the process
# holds one connection per thread per DB (six to eight in the window), and each cache fills
# toward its bound as the market DB grows, which was most of the window's memory growth left
# (bench/bench_memory.py --malloc: SQLite's own bytes 1.8 -> 3.1 MB in 40 minutes of the demo).
# Reads are index range scans over pages the OS keeps cached, so a reading connection gets a
# small cache (bench/bench_marketdb.py: "last 51" and the latest price within noise of a plain
# connection with the default cache). A connection that writes bar batches gets the default
# back (``ThreadLocalDB.writer_db``): a batch for 100 tickers dirties ~100 leaf pages, and a
# 64-page cache spilled them mid-transaction, inserting at 0.32x the plain connection's rate.
READ_CACHE_KIB = 256
WRITE_CACHE_KIB = 2000


def last_rowid(cur: sqlite3.Cursor) -> int:
    """The row id an INSERT just made (sqlite3 types it ``int | None``: None before any)."""
    if cur.lastrowid is None:
        raise StorageError("the INSERT made no row")
    return cur.lastrowid


class StorageError(RuntimeError):
    """A DB file cannot be opened or written; the message names the file and the reason."""


def connect(path: str | Path, readonly: bool = False) -> sqlite3.Connection:
    """Open ``path`` with WAL and a busy timeout. ``":memory:"`` is allowed for tests."""
    p = str(path)
    new = False
    if p != ":memory:":
        parent = Path(p).parent
        try:
            if not parent.exists():
                parent.mkdir(parents=True, mode=0o700)  # private: trading history, PIN hash
                os.chmod(parent, 0o700)
        except OSError as e:
            raise StorageError(f"cannot create data folder {parent}: {e.strerror}") from None
        new = not readonly and not Path(p).exists()
        if new:
            try:  # created 0600 before SQLite opens it (its -wal/-shm copy the mode)
                os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600))
                os.chmod(p, 0o600)
            except OSError as e:
                raise StorageError(f"cannot create database {p}: {e.strerror}") from None
    try:
        if readonly and p != ":memory:":
            conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                   check_same_thread=False)
        else:
            conn = sqlite3.connect(p, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        # Autocommit at the driver level: multi-step writes use ``Database.atomic()``.
        conn.isolation_level = None
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly and p != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA cache_size = {-READ_CACHE_KIB}")
    except sqlite3.OperationalError as e:
        raise StorageError(f"cannot open database {p}: {e}") from None
    except sqlite3.DatabaseError as e:
        raise StorageError(f"{p} is not a usable SQLite database: {e}") from None
    return conn


class ThreadLocalDB:
    """One sqlite-utils ``Database`` per OS thread over the same file."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = str(path)
        self.readonly = readonly
        self._by_thread: dict[int, sqlite_utils.Database] = {}  # OS thread id -> its DB
        self._lock = threading.Lock()
        if self.path == ":memory:":
            # An in-memory DB exists per connection: share one (tests only, single thread).
            self._shared: sqlite_utils.Database | None = sqlite_utils.Database(connect(":memory:"))
        else:
            self._shared = None

    @property
    def db(self) -> sqlite_utils.Database:
        if self._shared is not None:
            return self._shared
        tid = threading.get_native_id()
        d = self._by_thread.get(tid)
        if d is None:
            # Registers a foreign (Qt) thread with ``threading`` (what ``_thread_alive`` asks
            # where there is no /proc).
            threading.current_thread()
            conn = connect(self.path, readonly=self.readonly)
            d = sqlite_utils.Database(conn)
            with self._lock:
                self._close_ended_threads()
                self._by_thread[tid] = d
        return d

    @property
    def writer_db(self) -> sqlite_utils.Database:
        """This thread's ``db`` for bulk writes: its page cache at the writers' size (setting
        it is a cached statement of a few microseconds; the thread keeps it afterwards)."""
        d = self.db
        if not self.readonly:
            d.conn.execute(f"PRAGMA cache_size = {-WRITE_CACHE_KIB}")
        return d

    def connection_count(self) -> int:
        """Open connections (one per thread that used this store and is still alive)."""
        return len(self._by_thread) + (self._shared is not None)

    def release_thread(self) -> None:
        """Close the calling thread's connection now (a short-lived thread, at its end: else
        it stays open until another thread next opens one)."""
        with self._lock:
            d = self._by_thread.pop(threading.get_native_id(), None)
        if d is not None:
            _close_quietly(d.conn)

    def _close_ended_threads(self) -> None:
        for tid in [t for t in self._by_thread if not _thread_alive(t)]:
            _close_quietly(self._by_thread.pop(tid).conn)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def close(self) -> None:
        with self._lock:
            dbs = list(self._by_thread.values())
            self._by_thread.clear()
        for d in dbs:
            _close_quietly(d.conn)
        if self._shared is not None:
            self._shared.conn.close()


class Store:
    """A DB file behind one connection per thread, its migrations applied when opened
    (``readonly``: a WAL reader, as in plugin worker processes; no migration, no writes)."""

    what = "DB"  # named when the file cannot be used

    def __init__(self, path: str | Path, migrations: Migrations, readonly: bool = False) -> None:
        from db.migrations import apply

        self._tl = ThreadLocalDB(path, readonly=readonly)
        if readonly:
            return
        try:
            apply(self._tl.db, migrations)
        except sqlite3.DatabaseError as e:
            raise StorageError(f"cannot use {self.what} {path}: {e}") from None

    @property
    def conn(self) -> sqlite3.Connection:
        return self._tl.conn

    def open_connections(self) -> int:
        """Connections open now (one per live thread that used this store)."""
        return self._tl.connection_count()

    def release_thread(self) -> None:
        """Close the calling thread's connection (see ``ThreadLocalDB.release_thread``)."""
        self._tl.release_thread()

    def close(self) -> None:
        self._tl.close()


_PROC_TASKS = os.path.isdir("/proc/self/task")


def _thread_alive(native_id: int) -> bool:
    """Whether the OS thread still runs in this process: Linux answers in /proc; elsewhere
    (a macOS laptop) ``threading``'s list, which has every thread that opened a connection."""
    if _PROC_TASKS:
        return os.path.exists(f"/proc/self/task/{native_id}")
    return any(t.native_id == native_id for t in threading.enumerate())


def _close_quietly(conn: sqlite3.Connection) -> None:
    try:
        conn.close()
    except sqlite3.Error:
        pass
