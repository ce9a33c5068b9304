"""The system DB's settings read with plain sqlite3, before any store is open.

The lock screen's first frame needs three settings (is a PIN set, the wrong-try count, the
lock's end) and nothing else of the DB (issue 15, start to first frame). Opening the real
store means sqlite-utils and its migrations; so this module uses the standard library only
and imports nothing of ours (the ``db`` package loads its stores lazily, so importing
``db.settings_peek`` costs no sqlite-utils). The file is opened read-only: it is never created, migrated
or written here (``SystemStore`` does that after the first frame).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

# A short wait: a DB locked by another process is left to the normal start, which says so
# and waits it out (app/engine/storage.py).
TIMEOUT_S = 0.5


def read_settings(path: str | Path) -> dict[str, str]:
    """Every row of the ``settings`` table ({} when the file or the table does not exist
    yet). Raises ``sqlite3.Error`` when the file cannot be read (not a database, locked)."""
    p = Path(path)
    if str(path) == ":memory:" or not p.is_file():
        return {}
    conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=TIMEOUT_S)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'settings'"
                        ).fetchone() is None:
            return {}
        return {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM settings")}
    finally:
        conn.close()
