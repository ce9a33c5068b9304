"""Detecting that another process has a DB open, the way restore must before overwriting."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from app.ops.inuse import db_holders, dms_lock_holder


def test_a_running_process_is_seen_and_our_own_connection_is_not(holder: subprocess.Popen,
                                                                 populated: Path) -> None:
    system_db = populated / "system.db"
    own = sqlite3.connect(system_db)
    own.execute("SELECT count(*) FROM algorithms").fetchone()
    try:
        assert db_holders(system_db) == [holder.pid]
        assert dms_lock_holder(system_db) == holder.pid
        assert db_holders(populated / "market.db") == [holder.pid]
    finally:
        own.close()


def test_nobody_holds_a_closed_db(populated: Path) -> None:
    assert db_holders(populated / "system.db") == []
    assert db_holders(populated / "missing.db") == []
