"""Private files: the data folder 0700; DBs, their WAL files, logs and the config 0600 at
creation (real files, real processes)."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_new_data_folder_and_dbs_are_private_even_with_an_open_umask(tmp_path):
    from db.market import MarketStore
    from db.system import SystemStore

    old = os.umask(0o022)  # the usual default, which made them world-readable
    try:
        folder = tmp_path / "fresh" / "data"
        system = SystemStore(folder / "system.db")
        market = MarketStore(folder / "market.db")
        system.set_setting("x", "1")
    finally:
        os.umask(old)
    try:
        assert _mode(folder) == 0o700
        for name in ("system.db", "market.db", "system.db-wal", "system.db-shm"):
            if (folder / name).exists():
                assert _mode(folder / name) == 0o600, name
        assert _mode(folder / "system.db") == 0o600
    finally:
        system.close()
        market.close()


def test_log_file_is_private(tmp_path):
    from app.logging_setup import setup_logging

    old = os.umask(0o022)
    try:
        log = setup_logging("INFO", tmp_path / "logs", console=False)
        logging.getLogger("test").info("hello")
    finally:
        os.umask(old)
        setup_logging("INFO", None, console=False)
    assert log is not None and _mode(log) == 0o600
    assert _mode(tmp_path / "logs") == 0o700


def test_cli_creates_the_config_private(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AUTOTRADER_"))}
    env.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                "XDG_DATA_HOME": str(tmp_path / "share")})
    proc = subprocess.run([sys.executable, "-c",
                           "import os; os.umask(0o022); from app.cli import main; "
                           "raise SystemExit(main(['config', '--init']))"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    made = [p for p in (tmp_path / "cfg").rglob("*") if p.is_file()]
    assert made, proc.stdout
    for p in made:
        assert _mode(p) == 0o600, p
