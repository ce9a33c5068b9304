"""Read-only inspection of an AutoTrader DB file: integrity and schema migrations.

Nothing here writes to the file or applies a migration: ``doctor`` and ``restore`` must be able
to look at a DB that a running app is using, or that is damaged, without changing it.
"""

from __future__ import annotations

import importlib
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from db.connection import BUSY_TIMEOUT_MS

logger = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
# Modules that register migrations on the shared sets when imported. All of them live in
# db.migrations today; a module listed here that does not exist is skipped.
MIGRATION_MODULES = ("db.migrations",)


def migration_sets() -> dict[str, Migrations]:
    """{'system.db': ..., 'market.db': ...} with every migration this AutoTrader knows."""
    for name in MIGRATION_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            logger.debug("%s not present; its migrations are not known", name)
    from db.migrations import market_migrations, system_migrations

    return {"system.db": system_migrations, "market.db": market_migrations}


@dataclass
class DBReport:
    path: Path
    exists: bool = False
    readable: bool = False
    integrity: list[str] = field(default_factory=list)  # ['ok'] when healthy
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # applied here, unknown to this version
    counts: dict[str, int] = field(default_factory=dict)
    error: str = ""

    @property
    def intact(self) -> bool:
        return self.readable and self.integrity == ["ok"]

    @property
    def usable(self) -> bool:
        """Intact and not written by a newer AutoTrader."""
        return self.intact and not self.unknown


def open_readonly(path: Path) -> sqlite3.Connection:
    # mode=ro never creates the file; immutable is not used because a running app may write.
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY name")]
    return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


def inspect_db(path: str | Path, migrations: Migrations, *, quick: bool = False) -> DBReport:
    """Integrity (``PRAGMA integrity_check``, or ``quick_check``) and migration state."""
    rep = DBReport(Path(path))
    if not rep.path.exists():
        return rep
    rep.exists = True
    try:
        with rep.path.open("rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as e:
        rep.error = f"cannot read it: {e.strerror}"
        return rep
    if header != SQLITE_HEADER:
        rep.error = ("it is not a SQLite database (empty file)" if not header
                     else "it is not a SQLite database (the file header is wrong)")
        return rep
    conn = None
    try:
        conn = open_readonly(rep.path)
        pragma = "quick_check" if quick else "integrity_check"
        rep.integrity = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}(20)")]
        rep.readable = True
        db = sqlite_utils.Database(conn)
        rep.applied = [m.name for m in migrations.applied(db)]
        known = [m.name for m in migrations._migrations]
        rep.pending = [n for n in known if n not in rep.applied]
        rep.unknown = [n for n in rep.applied if n not in known]
        if rep.intact:
            rep.counts = table_counts(conn)
    except sqlite3.DatabaseError as e:
        rep.error = str(e)
        if not rep.integrity:
            rep.readable = False
    finally:
        if conn is not None:
            conn.close()
    return rep


def describe_problem(rep: DBReport) -> str:
    """One plain sentence about what is wrong with the DB ('' when nothing is)."""
    if not rep.exists:
        return ""
    if rep.error and not rep.readable:
        return f"{rep.path} cannot be used: {rep.error}"
    if rep.integrity != ["ok"]:
        detail = "; ".join(rep.integrity[:3])
        return f"{rep.path} is damaged (integrity check: {detail})"
    if rep.error:
        return f"{rep.path} cannot be read fully: {rep.error}"
    if rep.unknown:
        return (f"{rep.path} was written by a newer AutoTrader (schema steps "
                f"{', '.join(rep.unknown)} are unknown to this version)")
    return ""
