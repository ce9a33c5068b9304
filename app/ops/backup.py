"""``autotrader backup`` and ``autotrader restore``.

A backup is a folder (or a ``.tar.gz`` of it) holding consistent copies of ``system.db`` and
``market.db`` made with SQLite's online backup API, the config file, and ``manifest.json``
(version, schema steps, row counts and checksums). The backup API copies a snapshot inside one
read transaction, so it is consistent while the app is running and writing (WAL lets the app
keep writing meanwhile). The copies are switched to rollback-journal mode so that each one is a
single self-contained file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import sys
import tarfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from app import __version__
from app.cliargs import add_common_options, settings_from_args
from app.config import ConfigError, Settings
from app.ops.dbcheck import describe_problem, inspect_db, migration_sets
from db.connection import BUSY_TIMEOUT_MS

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1
DB_FILES = ("system.db", "market.db")
CONFIG_NAME = "autotrader.toml"


class BackupError(RuntimeError):
    """The backup or restore cannot go ahead; the message says why and what to do."""


def default_backup_dir(settings: Settings) -> Path:
    return settings.data_path / "backups"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_db(src: Path, dst: Path) -> None:
    """Consistent copy of a live SQLite DB into a new single-file DB at ``dst``."""
    try:
        # mode=rw: never create a missing source; the source connection only reads.
        s = sqlite3.connect(f"file:{src}?mode=rw", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.OperationalError as e:
        raise BackupError(f"cannot open {src}: {e}") from None
    d = sqlite3.connect(dst)
    try:
        s.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        s.backup(d)  # all pages in one step: one read transaction, one snapshot
        d.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.DatabaseError as e:
        d.close()
        dst.unlink(missing_ok=True)
        raise BackupError(f"cannot copy {src}: {e}") from None
    finally:
        s.close()
    d.close()


@dataclass
class BackupResult:
    path: Path
    manifest: dict = field(default_factory=dict)


def create_backup(settings: Settings, dest: Path | None = None, *, archive: bool = False,
                  skip_market: bool = False, include_config: bool = True,
                  label: str = "autotrader-backup") -> BackupResult:
    """Back up the DBs (and the config) of ``settings`` into a new timestamped folder in
    ``dest`` (a ``.tar.gz`` of it when ``archive``). Returns where it went."""
    dest = Path(dest) if dest else default_backup_dir(settings)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = dest / f"{label}-{stamp}Z"
    n = 1
    while folder.exists() or folder.with_name(folder.name + ".tar.gz").exists():
        n += 1
        folder = dest / f"{label}-{stamp}Z-{n}"
    names = [f for f in DB_FILES if not (skip_market and f == "market.db")]
    present = [f for f in names if (settings.data_path / f).exists()]
    if not present:
        raise BackupError(f"nothing to back up: no DB in {settings.data_path} "
                          "(use --data-dir if the data lives elsewhere)")
    try:
        folder.mkdir(parents=True, mode=0o700)
    except OSError as e:
        raise BackupError(f"cannot create {folder}: {e.strerror}") from None
    sets = migration_sets()
    manifest: dict = {"format": FORMAT, "app_version": __version__,
                      "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                      "source_data_dir": str(settings.data_path), "files": {}, "config": None}
    try:
        for name in present:
            target = folder / name
            copy_db(settings.data_path / name, target)
            rep = inspect_db(target, sets[name])
            problem = describe_problem(rep)
            if problem:
                raise BackupError(f"the copy of {name} is not sound: {problem}; the original "
                                  "may be damaged: run 'autotrader doctor'")
            manifest["files"][name] = {"sha256": sha256(target), "size": target.stat().st_size,
                                       "schema": rep.applied, "counts": rep.counts}
        cfg = Path(settings.config_path) if settings.config_path else None
        if include_config and cfg and cfg.is_file():
            shutil.copyfile(cfg, folder / CONFIG_NAME)
            (folder / CONFIG_NAME).chmod(0o600)  # it may hold API keys
            manifest["config"] = CONFIG_NAME
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if not archive:
        return BackupResult(folder, manifest)
    tar_path = folder.with_name(folder.name + ".tar.gz")
    fd = os.open(tar_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    shutil.rmtree(folder)
    return BackupResult(tar_path, manifest)


def prune(dest: Path, keep: int, label: str = "autotrader-backup") -> list[Path]:
    """Delete all but the newest ``keep`` backups named ``<label>-*`` in ``dest``; return them.

    Only backups this command names itself are touched (their names sort by UTC time);
    ``before-restore-*`` copies and anything else in the folder are left alone."""
    if keep < 1:
        raise BackupError("--keep must be 1 or more")
    found = sorted(p for p in dest.glob(f"{label}-*")
                   if p.is_dir() or p.name.endswith(".tar.gz"))
    old = found[:-keep]
    for p in old:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    return old


# --- CLI --------------------------------------------------------------------------------------
def backup_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="autotrader backup",
        description="Copy system.db, market.db and the config into a timestamped folder. "
                    "Safe while AutoTrader runs.")
    add_common_options(p)
    p.add_argument("--dest", help="where to put the backup (default: <data folder>/backups)")
    p.add_argument("--archive", action="store_true", help="write one .tar.gz instead of a folder")
    p.add_argument("--skip-market", action="store_true",
                   help="leave out market.db (minute bars; they can be downloaded again)")
    p.add_argument("--no-config", action="store_true", help="leave out the config file")
    p.add_argument("--keep", type=int, metavar="N",
                   help="then delete older backups in the same folder, keeping the newest N")
    return p


def main(argv: list[str]) -> int:
    """``argv[0]`` is ``backup``."""
    args = backup_parser().parse_args(argv[1:])
    try:
        try:
            settings = settings_from_args(args)
        except ConfigError as e:
            # The data still deserves a backup; the config file is copied as it is.
            if not args.data_dir:
                raise BackupError(f"the config cannot be read ({e}); pass --data-dir to say "
                                  "where the data is") from None
            from app.config import default_config_path

            settings = Settings(data_dir=args.data_dir,
                                config_path=str(Path(args.config).expanduser() if args.config
                                                else default_config_path()))
            print(f"warning: the config cannot be read ({e}); it is backed up as it is",
                  file=sys.stderr)
        if args.keep is not None and args.keep < 1:
            raise BackupError("--keep must be 1 or more")
        res = create_backup(settings, Path(args.dest).expanduser() if args.dest else None,
                            archive=args.archive, skip_market=args.skip_market,
                            include_config=not args.no_config)
        removed = prune(res.path.parent, args.keep) if args.keep else []
    except BackupError as e:
        print(f"autotrader backup: {e}", file=sys.stderr)
        return 1
    for name, info in res.manifest["files"].items():
        counts = ", ".join(f"{k} {v}" for k, v in info["counts"].items())
        print(f"  {name:<10} {info['size'] / 1e6:8.1f} MB  {counts}")
    if res.manifest["config"]:
        print(f"  {CONFIG_NAME} (may hold API keys: keep the backup private)")
    print(f"backup written to {res.path}")
    for p in removed:
        print(f"  removed the older backup {p.name}")
    return 0
