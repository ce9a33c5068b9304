"""``autotrader restore``: check a backup, keep a copy of what is there now, put the backup back.

The DBs are written with SQLite's backup API into the live files rather than copied over them,
so a stray connection (``--force`` while the app runs) sees either the old or the new content,
never a torn file, and the WAL of the target is handled by SQLite itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sqlite3
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.cliargs import add_common_options, settings_from_args
from app.config import ConfigError, Settings
from app.ops.backup import (
    CONFIG_NAME,
    DB_FILES,
    FORMAT,
    MANIFEST,
    BackupError,
    create_backup,
    sha256,
)
from app.ops.dbcheck import describe_problem, inspect_db, migration_sets
from app.ops.inuse import db_holders
from db.connection import BUSY_TIMEOUT_MS

logger = logging.getLogger(__name__)


@dataclass
class CheckedBackup:
    folder: Path
    manifest: dict


def _extract(archive: Path, into: Path) -> Path:
    """Unpack a backup archive safely; return the folder holding its manifest."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for m in tar.getmembers():
                if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in Path(
                        m.name).parts:
                    raise BackupError(f"{archive}: unexpected entry {m.name!r}; not a backup "
                                      "made by AutoTrader")
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
                tar.extractall(into, filter="data")
            else:
                tar.extractall(into)  # members were checked above
    except (tarfile.TarError, OSError) as e:
        raise BackupError(f"{archive}: cannot unpack ({e})") from None
    found = sorted(into.rglob(MANIFEST))
    if not found:
        raise BackupError(f"{archive}: no {MANIFEST} inside; not a backup made by AutoTrader")
    return found[0].parent


def check_backup(folder: Path) -> CheckedBackup:
    """Validate a backup folder; raise ``BackupError`` saying what is wrong."""
    mpath = folder / MANIFEST
    if not mpath.is_file():
        raise BackupError(f"{folder}: no {MANIFEST}; not a backup made by AutoTrader")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        files = manifest["files"]
        fmt = manifest["format"]
    except (ValueError, KeyError, TypeError) as e:
        raise BackupError(f"{mpath}: unreadable manifest ({e})") from None
    if fmt != FORMAT:
        raise BackupError(f"{mpath}: backup format {fmt} is not known to this AutoTrader")
    if not files or not set(files) <= set(DB_FILES):
        raise BackupError(f"{mpath}: lists {sorted(files)}, expected some of {DB_FILES}")
    sets = migration_sets()
    for name, info in files.items():
        path = folder / name
        if not path.is_file():
            raise BackupError(f"{folder}: {name} is listed but missing")
        if sha256(path) != info.get("sha256"):
            raise BackupError(f"{path}: checksum differs from the manifest; the backup was "
                              "changed or damaged after it was made")
        rep = inspect_db(path, sets[name])
        problem = describe_problem(rep)
        if problem:
            raise BackupError(problem)
    if manifest.get("config") and not (folder / CONFIG_NAME).is_file():
        raise BackupError(f"{folder}: the config file is listed but missing")
    return CheckedBackup(folder, manifest)


def _write_db(src: Path, dst: Path) -> None:
    """Replace the content of ``dst`` with ``src`` through the backup API (WAL kept)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    s = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    d = sqlite3.connect(dst, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        d.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        s.backup(d)
        d.execute("PRAGMA journal_mode = WAL")
        d.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        s.close()
        d.close()


def restore(checked: CheckedBackup, data_dir: Path, config_path: Path | None,
            safety_dir: Path) -> list[str]:
    """Write the checked backup into ``data_dir`` (and the config); return what was done."""
    done: list[str] = []
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    for name in checked.manifest["files"]:
        _write_db(checked.folder / name, data_dir / name)
        done.append(f"restored {data_dir / name}")
    if config_path is not None and checked.manifest.get("config"):
        new = (checked.folder / CONFIG_NAME).read_bytes()
        if config_path.exists() and config_path.read_bytes() != new:
            kept = config_path.with_name(f"{config_path.name}.before-restore-{stamp}")
            shutil.copy2(config_path, kept)
            done.append(f"kept the previous config as {kept}")
        if not config_path.exists() or config_path.read_bytes() != new:
            config_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(new)
            config_path.chmod(0o600)
            done.append(f"restored {config_path}")
    # The restored files must read back as the backup described them.
    sets = migration_sets()
    for name, info in checked.manifest["files"].items():
        rep = inspect_db(data_dir / name, sets[name])
        if describe_problem(rep) or rep.counts != info["counts"]:
            raise BackupError(f"{data_dir / name} does not match the backup after restoring; "
                              f"the previous files are in {safety_dir}")
    return done


def _backup_mode(folder: Path) -> str | None:
    """The mode the backed-up system DB ran in (``data_mode`` setting), if it says."""
    path = folder / "system.db"
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM settings WHERE key = 'data_mode'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    mode = row[0] if row else None
    return mode if mode in ("demo", "paper", "live") else None


def _settings_for_restore(args: argparse.Namespace) -> Settings:
    try:
        return settings_from_args(args)
    except ConfigError as e:
        # A broken config must not stop a restore that brings a good one back, but where the
        # data goes must then be said explicitly (the broken file may have named a folder).
        if args.no_config:
            raise
        if not args.data_dir:
            raise BackupError(f"the config cannot be read ({e}); pass --data-dir to say where "
                              "the data goes, and the backup's config replaces the broken one") \
                from None
        from app.config import default_config_path

        print(f"the config cannot be read ({e}); it is replaced by the backup's")
        return Settings(data_dir=args.data_dir,
                        config_path=str(Path(args.config).expanduser() if args.config
                                        else default_config_path()))


def run_restore(args: argparse.Namespace) -> int:
    def fail(msg: str) -> int:
        print(f"autotrader restore: {msg}", file=sys.stderr)
        return 1

    try:
        settings = _settings_for_restore(args)
    except BackupError as e:
        return fail(str(e))
    source = Path(args.source).expanduser()
    if not source.exists():
        return fail(f"{source} does not exist")
    with tempfile.TemporaryDirectory(prefix="autotrader-restore-") as tmp:
        try:
            folder = _extract(source, Path(tmp)) if source.is_file() else source
            checked = check_backup(folder)
        except BackupError as e:
            return fail(f"the backup cannot be used: {e}")
        m = checked.manifest
        print(f"backup of {m.get('created_at', '?')} by AutoTrader {m.get('app_version', '?')}: "
              "checked, sound")
        for name, info in m["files"].items():
            counts = ", ".join(f"{k} {v}" for k, v in info["counts"].items())
            print(f"  {name:<10} {counts}")
        if args.check:
            return 0
        data_dir = settings.data_path
        backup_mode = _backup_mode(checked.folder)
        if not settings.data_dir and backup_mode and backup_mode != settings.effective_mode:
            # Default folders are per mode: a paper backup goes back to the paper folder.
            data_dir = data_dir.parent / backup_mode
            settings = dataclasses.replace(settings, data_dir=str(data_dir))
            print(f"the backup holds a {backup_mode.upper()} session: restoring into {data_dir}")
        busy = {n: db_holders(data_dir / n) for n in DB_FILES}
        busy = {n: p for n, p in busy.items() if p}
        if busy and not args.force:
            who = "; ".join(f"{n} is open in process {', '.join(map(str, p))}"
                            for n, p in busy.items())
            return fail(f"AutoTrader is running ({who}). Stop it first (on a Pi: "
                        "sudo systemctl stop autotrader), or pass --force to restore anyway.")
        safety = None
        try:
            if any((data_dir / n).exists() for n in DB_FILES):
                safety = create_backup(settings, label="before-restore").path
                print(f"the current files are kept in {safety}")
            cfg = None if args.no_config else Path(settings.config_path or "")
            done = restore(checked, data_dir, cfg if settings.config_path else None,
                           safety or data_dir)
        except BackupError as e:
            return fail(str(e))
        except (OSError, sqlite3.DatabaseError) as e:
            return fail(f"restoring failed: {e}"
                        + (f"; the previous files are in {safety}" if safety else ""))
    for line in done:
        print(f"  {line}")
    if busy:
        print("AutoTrader was running during the restore: restart it now.")
    print("restore complete")
    return 0


def restore_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="autotrader restore",
        description="Put a backup's DBs (and config) back. The backup is checked first; the "
                    "current files are backed up before they are replaced.")
    add_common_options(p)
    p.add_argument("source", help="a backup folder or .tar.gz made by 'autotrader backup'")
    p.add_argument("--force", action="store_true",
                   help="restore even though a running AutoTrader has the DBs open")
    p.add_argument("--no-config", action="store_true", help="keep the current config file")
    p.add_argument("--check", action="store_true", help="only check the backup, change nothing")
    return p


def main(argv: list[str]) -> int:
    """``argv[0]`` is ``restore``."""
    return run_restore(restore_parser().parse_args(argv[1:]))
