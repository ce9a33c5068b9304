"""The PIN pad while the system DB takes no writes (another process holds its write lock):
the owner still gets in with the right PIN, and wrong tries still count and lock.

A real SQLite file; a second process holds the write lock (BEGIN IMMEDIATE)."""

from __future__ import annotations

import subprocess
import sys

from app.security import FREE_TRIES, PinGuard

HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


class Clock:
    t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def _holder(path: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, path], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "locked"
    return p


def test_pin_pad_works_while_the_db_is_locked_by_another_process(system_store, caplog):
    clock = Clock()
    guard = PinGuard(system_store, now=clock)
    guard.set_pin("246810")
    assert not guard.check("111111").ok  # one wrong try saved before the lock
    system_store.conn.execute("PRAGMA busy_timeout = 200")  # this thread's wait, shortened
    holder = _holder(str(system_store.path))
    try:
        # The right PIN unlocks although its housekeeping (reset the count) cannot be saved.
        assert guard.check("246810").ok
        # Wrong tries count and lock all the same (in memory until the DB takes writes).
        results = [guard.check("000000") for _ in range(FREE_TRIES)]
        assert [r.ok for r in results] == [False] * FREE_TRIES
        assert results[-1].locked_for > 0 and guard.locked_for() > 0
        assert not guard.check("246810").ok  # locked: even the right PIN waits
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    assert any("is not saved" in r.getMessage() for r in caplog.records)
    clock.t += 3600  # the lock is over; the next wrong try saves the whole count
    assert not guard.check("000000").ok
    # 1 before the lock, 4 during it (the 5th locked the pad: the last try was refused
    # uncounted), 1 now.
    assert int(system_store.get_setting("security.pin_failures")) == FREE_TRIES + 1
    clock.t += 3600  # that try locked the pad again
    assert guard.check("246810").ok
    assert system_store.get_setting("security.pin_failures") == "0"
