"""Storage faults seen by the engine: a DB locked by another process, a full disk.

- ``classify(e)``: ``"locked"``, ``"full"`` or None for an exception from SQLite or the OS;
- ``retry_locked(fn, deadline)``: run ``fn`` again while the DB stays locked, until
  ``deadline`` (a ``time.monotonic()`` value; the tick's budget);
- ``DiskWatch``: free space of the data folder, checked at start and every few minutes; warns
  below one threshold and pauses trading below another (and after a write failed because the
  disk was full) until the space is back (the pause itself is said by its caller, once);
- ``OnceNotice``: a problem said once (an ERROR line) while it lasts, and once when it clears,
  instead of a traceback every minute;
- ``DeferredWrites``: a stop's, resume's or delete's writes, saved later when the DB is
  locked by another process or the disk full (the request itself never waits for them),
  journaled beside the DB so a kill meanwhile loses none (``replay_journal`` at start).

No Qt, no SQL: the engine catches what its DB steps raise.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from db.connection import StorageError

logger = logging.getLogger(__name__)

T = TypeVar("T")

MB = 1024 * 1024
DEFAULT_WARN_BYTES = 500 * MB
DEFAULT_PAUSE_BYTES = 20 * MB
DEFAULT_CHECK_EVERY = 300.0  # seconds of real time
RESUME_MARGIN = 256 * 1024  # after a failed write, this much more room before trying again

FULL_ADVICE = "free some space on that disk; trading resumes by itself once there is room"
LOCKED_ADVICE = ("close the other program holding it (an sqlite3 shell, a DB browser, a "
                 "backup tool)")


def start_wait_message(kind: str, folder: Path | str, e: BaseException) -> str:
    """What to show while start-up waits out a storage fault of ``kind`` (full, locked)."""
    if kind == "locked":
        return (f"a database in {folder} is locked by another process ({e}); "
                f"{LOCKED_ADVICE}: AutoTrader starts by itself once it is free")
    return (f"the disk holding {folder} is full ({e}); free some space: AutoTrader starts "
            "by itself once there is room")


def classify(e: BaseException) -> str | None:
    """``"locked"``, ``"full"``, ``"io"`` or None (not a storage fault we know how to wait
    out). A ``StorageError`` (a DB that could not be opened) is read by its text: it carries
    SQLite's message, not its code."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "full"
    if isinstance(e, sqlite3.OperationalError | sqlite3.DatabaseError | StorageError):
        text = str(e).lower()
        code = getattr(e, "sqlite_errorcode", None)
        if code in (sqlite3.SQLITE_FULL,) or "disk is full" in text \
                or "no space left" in text:
            return "full"
        if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text \
                or "busy" in text:
            return "locked"
        if "disk i/o error" in text or code == sqlite3.SQLITE_IOERR:
            return "io"
    return None


def wait_out_storage(fn: Callable[[], T], folder: Path | str, say: Callable[[str], Any], *,
                     sleep: Callable[[float], Any] = time.sleep, first: float = 5.0,
                     most: float = 300.0) -> T:
    """``fn()`` (opening the DBs at start-up), tried again with backoff (``first`` s doubling
    to ``most``) while it fails for a full disk or a DB locked by another process;
    ``say(message)`` once when the wait starts, with what to do. Other errors are raised."""
    delay, said = first, False
    while True:
        try:
            return fn()
        except (StorageError, sqlite3.Error, OSError) as e:
            kind = classify(e)
            if kind not in ("full", "locked"):
                raise
            if not said:
                said = True
                say(start_wait_message(kind, folder, e))
            sleep(delay)
            delay = min(delay * 2, most)


def retry_locked(fn: Callable[[], T], deadline: float, *, pause: float = 0.2,
                 what: str = "write") -> T:
    """``fn()``, tried again (after ``pause`` s) while it fails with "database is locked"
    and ``time.monotonic()`` is before ``deadline``. Each try already waits the connection's
    busy timeout, so a lock held a little longer than that costs one more try, not the tick.
    The last failure is raised as it is."""
    tries = 0
    while True:
        tries += 1
        try:
            return fn()
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as e:
            if classify(e) != "locked" or time.monotonic() + pause >= deadline:
                raise
            logger.warning("%s: the database is locked by another process (%s); trying "
                           "again (try %d)", what, e, tries + 1)
            time.sleep(pause)


class OnceNotice:
    """One ERROR line when a problem of a kind starts, one WARNING line when all clear."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logger
        self.active: dict[str, int] = {}  # kind -> times seen since it was said

    @property
    def current(self) -> str | None:
        return next(iter(self.active), None)

    def problem(self, kind: str, message: str) -> bool:
        """Say ``message`` unless a problem of ``kind`` is being reported already; returns
        True when it was said."""
        if kind in self.active:
            self.active[kind] += 1
            self.log.debug("%s (again, %d times)", message, self.active[kind])
            return False
        self.active[kind] = 0
        self.log.error("%s", message)
        return True

    def clear(self, message: str) -> None:
        if self.active:
            self.log.warning("%s (after %d more minutes with the problem)", message,
                             max(self.active.values()))
        self.active.clear()


class DiskWatch:
    """Free space of the folder holding the DBs and the log."""

    def __init__(self, path: str | Path | None, warn_bytes: int = DEFAULT_WARN_BYTES,
                 pause_bytes: int = DEFAULT_PAUSE_BYTES,
                 every: float = DEFAULT_CHECK_EVERY,
                 usage: Callable[[str], Any] = shutil.disk_usage) -> None:
        self.path = None if path is None else Path(path)
        self.warn_bytes, self.pause_bytes, self.every = int(warn_bytes), int(pause_bytes), every
        self._usage = usage
        self._checked: float | None = None
        self.free: int | None = None
        self.full: str | None = None  # why trading is paused for lack of space, or None
        self._warned = False
        self._resume_bytes = self.pause_bytes

    def _free_now(self) -> int | None:
        if self.path is None:
            return None
        p = self.path
        while not p.exists() and p != p.parent:
            p = p.parent
        try:
            return int(self._usage(str(p)).free)
        except OSError as e:
            logger.warning("cannot read the free space of %s: %s", self.path, e)
            return None

    def check(self, force: bool = False) -> str | None:
        """Look at the free space if due (every ``every`` s; each call while paused); return
        why trading is paused, or None."""
        now = time.monotonic()
        if not force and self.full is None and self._checked is not None \
                and now - self._checked < self.every:
            return self.full
        self._checked = now
        free = self._free_now()
        self.free = free
        if free is None:
            return self.full
        floor = self._resume_bytes if self.full is not None else self.pause_bytes
        if free < floor:
            if self.full is None:
                self.full = (f"the disk holding {self.path} is full ({_mb(free)} free, "
                             f"{_mb(self.pause_bytes)} needed): trading is paused; "
                             + FULL_ADVICE)
            return self.full
        if self.full is not None:
            logger.warning("disk space is back on %s (%s free): trading resumes", self.path,
                           _mb(free))
            self.full = None
            self._resume_bytes = self.pause_bytes
        if free < self.warn_bytes:
            if not self._warned:
                self._warned = True
                logger.warning("low disk space on %s: %s free (warning below %s); trading "
                               "pauses below %s", self.path, _mb(free), _mb(self.warn_bytes),
                               _mb(self.pause_bytes))
        else:
            self._warned = False
        return None

    def write_failed(self, e: BaseException) -> str:
        """A write failed because the disk is full: pause until the space is back (checked
        at every tick from now on)."""
        free = self._free_now()
        self.free = free
        if self.full is None:
            self.full = (f"the disk holding {self.path} is full "
                         f"({'?' if free is None else _mb(free)} free; a write failed: {e}): "
                         "trading is paused; " + FULL_ADVICE)
        # Space must come back (a little more than there was when the write failed).
        self._resume_bytes = max(self.pause_bytes, (free or 0) + RESUME_MARGIN)
        return self.full

    @property
    def low(self) -> bool:
        return self.free is not None and self.free < self.warn_bytes


def _mb(n: int) -> str:
    return f"{n / MB:,.1f} MB"


Record = list[list[Any]]
"""A deferred write as data (so it can be journaled): ``[["status", id, status, error],
["error", id, error], ...]``, applied in one transaction by ``apply_record``."""

JOURNAL_SUFFIX = "-deferred.jsonl"


def journal_path(store: Any) -> Path | None:
    """The journal of ``store``'s held-back writes: a file beside its DB (None for an
    in-memory DB)."""
    path = str(getattr(store, "path", "") or "")
    if not path or path == ":memory:" or path.startswith("file::memory"):
        return None
    p = Path(path)
    return p.with_name(p.name + JOURNAL_SUFFIX)


def apply_record(store: Any, record: Record) -> None:
    """Write one held-back record (its steps in one transaction)."""
    with store.atomic():
        for step in record:
            if step[0] == "status":
                store.set_algorithm_status(int(step[1]), str(step[2]), step[3])
            elif step[0] == "error":
                store.set_algorithm_error(int(step[1]), step[2])
            else:
                raise ValueError(f"unknown deferred write {step[0]!r}")


def replay_journal(store: Any) -> int:
    """At start, before the algorithms are read: the writes a previous run held back (a DB
    locked by another process, a full disk) and could not save before it ended (a kill, a
    power cut) are written now, in order, and the journal removed. Returns how many. A line
    cut short by the kill (the last one) is skipped. Raises what the DB raises (a lock at
    start is waited out by the caller); the journal stays until every record is written."""
    jp = journal_path(store)
    if jp is None or not jp.exists():
        return 0
    try:
        text = jp.read_text(encoding="utf-8", errors="replace")
    except OSError as e:  # kept for a look: what it holds is not known
        logger.error("cannot read the held-back writes of the last run in %s (%s); the "
                     "algorithms start as the database has them", jp, e)
        return 0
    records: list[Record] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, list) or not all(isinstance(s, list) and s for s in rec):
                raise ValueError("not a list of steps")
            records.append(rec)
        except ValueError as e:
            logger.warning("%s line %d skipped (cut short by a kill?): %s", jp, n, e)
    for rec in records:
        try:
            apply_record(store, rec)
        except (ValueError, IndexError, TypeError) as e:
            logger.error("held-back write %r skipped: %s", rec, e)
    _remove(jp)
    if records:
        logger.warning("%d writes held back by the last run (the database was locked or the "
                       "disk full when it ended) are saved now", len(records))
    return len(records)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class DeferredWrites:
    """Writes a stop, resume or delete makes (an algorithm's status and reason) that must not
    be lost and must not hold the request up: tried at once; while the DB is locked by another
    process (or the disk is full) they wait, in order, and a timer tries them again every
    ``every`` s until they are written (said once as an ERROR, once more when written). The
    request took effect in memory already, so no order leaves meanwhile.

    Each write that waits is also appended (fsync) to a journal beside the DB
    (``system.db-deferred.jsonl``), removed once the queue is empty: a kill during a long
    lock loses nothing, ``replay_journal`` writes them at the next start. (On a disk so full
    that even that line cannot be written, the write waits in memory only; said once.)

    One per store: ``DeferredWrites.of(store)``."""

    def __init__(self, store: Any = None, every: float = 2.0) -> None:
        self.store = store
        self.every = every
        self.journal = journal_path(store) if store is not None else None
        self._pending: list[tuple[Callable[[], Any], str]] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._journal_failed = False

    @classmethod
    def of(cls, store: Any) -> DeferredWrites:
        with _OF_LOCK:
            dw = getattr(store, "_deferred_writes", None)
            if dw is None:
                dw = cls(store)
                store._deferred_writes = dw
            return dw

    @property
    def pending(self) -> list[str]:
        with self._lock:
            return [what for _, what in self._pending]

    def save(self, record: Record, what: str) -> bool:
        """``record`` written now (True) or held back and journaled (False)."""
        return self.run(partial(apply_record, self.store, record), what, record)

    def run(self, fn: Callable[[], Any], what: str, record: Record | None = None) -> bool:
        """``fn()`` now (True), or queued behind earlier ones while the DB is locked or the
        disk full (False; ``record``, the same write as data, journaled). Other errors are
        raised as they are."""
        with self._lock:
            if self._pending:  # keep the order: behind the writes still waiting
                self._pending.append((fn, what))
                self._journal(record)
                return False
        try:
            fn()
            return True
        except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as e:
            kind = classify(e)
            if kind not in ("locked", "full"):
                raise
            with self._lock:
                first = not self._pending
                self._pending.append((fn, what))
                self._journal(record)
                self._arm()
            if first and kind == "locked":
                logger.error("%s: not saved yet, the database is locked by another process "
                             "(%s); it took effect and is saved as soon as the lock is "
                             "released (%s)", what, e, LOCKED_ADVICE)
            elif first:
                logger.error("%s: not saved yet, the disk is full (%s); it took effect and "
                             "is saved as soon as there is room (%s)", what, e, FULL_ADVICE)
            return False

    def _journal(self, record: Record | None) -> None:
        """(Under the lock) append ``record`` to the journal and fsync it."""
        if record is None or self.journal is None:
            return
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        try:
            new = not self.journal.exists()
            fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            if new:
                _fsync_dir(self.journal.parent)
        except OSError as e:
            if not self._journal_failed:
                self._journal_failed = True
                logger.error("cannot journal a held-back write in %s (%s): it waits in "
                             "memory only, and a restart before it is saved would not know "
                             "of it", self.journal, e)

    def flush(self) -> bool:
        """Try the waiting writes in order; True when none is left."""
        while True:
            with self._lock:
                if not self._pending:
                    return True
                fn, what = self._pending[0]
            try:
                fn()
            except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as e:
                if classify(e) in ("locked", "full"):
                    return False
                logger.error("%s: cannot be saved (%s); dropped", what, e)
            with self._lock:
                if len(self._pending) == 1 and self.journal is not None:
                    _remove(self.journal)  # every journaled write is in the DB now
                    self._journal_failed = False
                self._pending.pop(0)
                if not self._pending:
                    logger.warning("the database takes writes again: the waiting writes are "
                                   "saved")

    def _arm(self) -> None:
        """(Under the lock) a retry in ``every`` s unless one is due."""
        if self._timer is None or not self._timer.is_alive():
            self._timer = threading.Timer(self.every, self._retry)
            self._timer.daemon = True
            self._timer.name = "deferred-writes"
            self._timer.start()

    def _retry(self) -> None:
        done = self.flush()
        if not done:
            with self._lock:
                self._timer = None
                self._arm()


_OF_LOCK = threading.Lock()
