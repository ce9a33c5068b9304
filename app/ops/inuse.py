"""Which other processes have a SQLite DB open, without any help from them.

Two signals, both read-only:

* SQLite's WAL "dead-man switch": every open connection to a WAL database holds a shared
  POSIX lock on byte 128 of the ``-shm`` file (``UNIX_SHM_DMS`` in SQLite's os_unix.c) for as
  long as it is open. ``F_GETLK`` asks the kernel who holds it without taking any lock, so a
  running app is never disturbed.
* ``/proc/*/fd`` (Linux): processes with the DB file itself open, for the cases the lock
  cannot show (another user's process we may not query, a DB not in WAL mode).

Locks held by this process never show up in ``F_GETLK`` and its pid is dropped from the
``/proc`` scan, so a caller's own connections do not count.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: only the /proc scan (absent there too) remains
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

DMS_OFFSET = 128  # (22 + SQLITE_SHM_NLOCK) * 4 + SQLITE_SHM_NLOCK, SQLITE_SHM_NLOCK = 8
# struct flock on 64-bit Linux/macOS: short l_type, short l_whence, off_t l_start, off_t l_len,
# pid_t l_pid (macOS orders the fields differently, so the lock check is Linux-only).
_FLOCK = "hhqqi4x"


def _lock_check_supported() -> bool:
    return fcntl is not None and os.uname().sysname == "Linux" and struct.calcsize("l") == 8


def dms_lock_holder(db_path: Path) -> int | None:
    """The pid of a process holding the WAL dead-man-switch lock of ``db_path``, or None."""
    shm = Path(f"{db_path}-shm")
    if not _lock_check_supported() or not shm.exists():
        return None
    try:
        fd = os.open(shm, os.O_RDONLY)
    except OSError as e:
        logger.debug("cannot open %s: %s", shm, e)
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, DMS_OFFSET, 1, 0)
        l_type, _, _, _, pid = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))
    except OSError as e:
        logger.debug("F_GETLK on %s failed: %s", shm, e)
        return None
    finally:
        os.close(fd)
    return None if l_type == fcntl.F_UNLCK else int(pid)


def fd_holders(path: Path) -> set[int]:
    """Pids (other than ours) with ``path`` open, from ``/proc/*/fd``; empty where unreadable."""
    proc = Path("/proc")
    if not proc.is_dir():
        return set()
    try:
        target = os.path.realpath(path)
    except OSError:
        return set()
    me = os.getpid()
    found: set[int] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    found.add(int(entry.name))
                    break
            except OSError:
                continue
    return found


def db_holders(db_path: str | Path) -> list[int]:
    """Pids of other processes that have the SQLite DB at ``db_path`` open (best effort)."""
    p = Path(db_path)
    pids = fd_holders(p)
    holder = dms_lock_holder(p)
    if holder:
        pids.add(holder)
    pids.discard(os.getpid())
    return sorted(pids)
