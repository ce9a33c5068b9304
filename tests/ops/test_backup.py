"""``autotrader backup`` / ``restore`` on real DB files, with other processes holding them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from app.cli import main as cli
from tests.ops.conftest import transactions
from tests.waiting import wait_until


def _only(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_backup_then_restore_brings_back_the_same_transactions(populated: Path, tmp_path: Path,
                                                               capsys) -> None:
    before = transactions(populated / "system.db")
    assert cli(["backup", "--data-dir", str(populated), "--dest", str(tmp_path / "bk")]) == 0
    backup = _only(tmp_path / "bk", "autotrader-backup-*")
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["files"]["system.db"]["counts"]["transactions"] == 3
    assert manifest["files"]["market.db"]["counts"]["bars"] == 30
    assert "backup written to" in capsys.readouterr().out

    # Lose data after the backup: a new fill and a deleted algorithm's rows.
    conn = sqlite3.connect(populated / "system.db")
    conn.execute("DELETE FROM transactions WHERE algo_id = 2")
    conn.execute("INSERT INTO transactions (algo_id, ticker, type, shares, price, timestamp) "
                 "VALUES (1, 'AAPL', 'sell', 6, 190.0, '2024-01-03T15:00:00Z')")
    conn.commit()
    conn.close()
    assert transactions(populated / "system.db") != before

    assert cli(["restore", str(backup), "--data-dir", str(populated)]) == 0
    out = capsys.readouterr().out
    assert "restore complete" in out
    assert transactions(populated / "system.db") == before
    # What was there just before the restore is kept, not lost.
    kept = _only(populated / "backups", "before-restore-*")
    assert len(transactions(kept / "system.db")) == 3  # 3 - 1 deleted + 1 new
    assert str(kept) in out


def test_archive_round_trip_includes_the_config_and_keeps_the_replaced_one(
        populated: Path, tmp_path: Path, monkeypatch) -> None:
    cfg = tmp_path / "autotrader.toml"
    cfg.write_text('mode = "demo"\n[demo]\nspeed = 90.0\n')
    assert cli(["backup", "--data-dir", str(populated), "--config", str(cfg),
                "--dest", str(tmp_path / "bk"), "--archive"]) == 0
    archive = _only(tmp_path / "bk", "*.tar.gz")
    assert archive.stat().st_mode & 0o077 == 0  # may hold API keys: owner only
    with tarfile.open(archive) as tar:
        names = {Path(n).name for n in tar.getnames()}
    assert {"system.db", "market.db", "autotrader.toml", "manifest.json"} <= names

    cfg.write_text('mode = "demo"\n[demo]\nspeed = 30.0\n')
    assert cli(["restore", str(archive), "--data-dir", str(populated), "--config", str(cfg)]) == 0
    assert "speed = 90.0" in cfg.read_text()
    assert cfg.stat().st_mode & 0o077 == 0
    previous = _only(tmp_path, "autotrader.toml.before-restore-*")
    assert "speed = 30.0" in previous.read_text()


def test_restore_refuses_a_running_apps_db_unless_forced(holder: subprocess.Popen,
                                                         populated: Path, tmp_path: Path,
                                                         capsys) -> None:
    # The holder added one algorithm on start; the backup includes it.
    assert cli(["backup", "--data-dir", str(populated), "--dest", str(tmp_path / "bk")]) == 0
    backup = _only(tmp_path / "bk", "autotrader-backup-*")
    capsys.readouterr()
    assert cli(["restore", str(backup), "--data-dir", str(populated)]) == 1
    err = capsys.readouterr().err
    assert "AutoTrader is running" in err and str(holder.pid) in err and "--force" in err
    assert not (populated / "backups").exists() or not list(
        (populated / "backups").glob("before-restore-*"))

    # Forced: the content is written through SQLite, so the live process's next read sees it.
    live = sqlite3.connect(populated / "system.db")
    live.execute("DELETE FROM transactions")
    live.commit()
    assert cli(["restore", str(backup), "--data-dir", str(populated), "--force"]) == 0
    assert "restart it now" in capsys.readouterr().out
    assert live.execute("SELECT count(*) FROM transactions").fetchone()[0] == 3
    live.close()


def test_a_tampered_backup_is_refused_and_nothing_changes(populated: Path, tmp_path: Path,
                                                          capsys) -> None:
    assert cli(["backup", "--data-dir", str(populated), "--dest", str(tmp_path / "bk")]) == 0
    backup = _only(tmp_path / "bk", "autotrader-backup-*")
    conn = sqlite3.connect(backup / "system.db")
    conn.execute("DELETE FROM transactions")
    conn.commit()
    conn.close()
    before = (populated / "system.db").read_bytes()
    assert cli(["restore", str(backup), "--data-dir", str(populated)]) == 1
    assert "checksum differs" in capsys.readouterr().err
    assert (populated / "system.db").read_bytes() == before


def test_a_corrupt_backup_fails_the_check(populated: Path, tmp_path: Path, capsys) -> None:
    assert cli(["backup", "--data-dir", str(populated), "--dest", str(tmp_path / "bk")]) == 0
    backup = _only(tmp_path / "bk", "autotrader-backup-*")
    (backup / "market.db").write_bytes(b"not a database at all")
    manifest = json.loads((backup / "manifest.json").read_text())
    # Even with a matching checksum the file must be a sound SQLite DB.
    import hashlib

    manifest["files"]["market.db"]["sha256"] = hashlib.sha256(b"not a database at all").hexdigest()
    (backup / "manifest.json").write_text(json.dumps(manifest))
    assert cli(["restore", "--check", str(backup), "--data-dir", str(populated)]) == 1
    assert "not a SQLite database" in capsys.readouterr().err


def test_backup_refuses_an_empty_data_folder(tmp_path: Path, capsys) -> None:
    assert cli(["backup", "--data-dir", str(tmp_path / "none")]) == 1
    assert "nothing to back up" in capsys.readouterr().err


def test_backups_taken_while_another_process_writes_are_consistent(writer: subprocess.Popen,
                                                                   populated: Path,
                                                                   tmp_path: Path) -> None:
    """Each step of the writer puts an order and its fill in one transaction: every snapshot
    must hold as many writer fills as writer orders, and pass the integrity check."""
    from app.config import Settings
    from app.ops.backup import create_backup

    settings = Settings(data_dir=str(populated))
    seen = []
    deadline = time.monotonic() + 20
    while len(seen) < 5 and time.monotonic() < deadline:
        res = create_backup(settings, tmp_path / "bk", skip_market=True)
        conn = sqlite3.connect(res.path / "system.db")
        orders = conn.execute("SELECT count(*) FROM orders WHERE client_order_id LIKE 'w-%'"
                              ).fetchone()[0]
        fills = conn.execute("SELECT count(*) FROM transactions WHERE fill_id LIKE 'f-%'"
                             ).fetchone()[0]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        conn.close()
        assert orders == fills
        seen.append(orders)
    assert len(seen) == 5
    # The writer really was writing while the snapshots were taken.
    assert seen[-1] > seen[0], f"the writer did not progress between backups: {seen}"


def _order_fill_mismatches(db: Path) -> list[tuple]:
    """Plain (not netted) algorithm orders whose filled quantity differs from their fills."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(
            "SELECT o.client_order_id, o.filled_qty, COALESCE(SUM(t.shares), 0) FROM orders o "
            "LEFT JOIN transactions t ON t.order_id = o.id WHERE o.algo_id IS NOT NULL "
            "AND o.parent IS NULL AND o.crossed_qty = 0 GROUP BY o.id "
            "HAVING o.filled_qty != COALESCE(SUM(t.shares), 0)").fetchall()
    finally:
        conn.close()


def _wait_for_transactions(db: Path, more_than: int, proc: subprocess.Popen,
                           timeout: float = 60) -> int:
    def count() -> int:
        assert proc.poll() is None, "the demo stopped early"
        if not db.exists():
            return 0
        try:
            n = len(transactions(db))
        except sqlite3.OperationalError:  # tables not created yet
            return 0
        return n if n > more_than else 0

    return wait_until(count, timeout, what=f"more than {more_than} transactions",
                      interval=0.1)


@pytest.mark.slow
def test_backup_during_a_headless_demo_restores_to_the_same_transactions(tmp_path: Path,
                                                                         capsys) -> None:
    """A backup taken while the real headless demo trades holds a consistent snapshot: the
    transactions it restores are exactly the live DB's transactions up to that moment."""
    import os
    import signal
    import sys

    from tests.ops.conftest import ROOT

    pytest.importorskip("app.engine.runner")  # the headless demo
    data = tmp_path / "data"
    db = data / "system.db"
    cmd = [sys.executable, str(ROOT / "main.py"), "run", "--headless", "--data-dir", str(data),
           "--speed", "600"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_transactions(db, 0, proc)
        assert cli(["backup", "--data-dir", str(data), "--dest", str(tmp_path / "bk")]) == 0
        backup = _only(tmp_path / "bk", "autotrader-backup-*")
        taken = json.loads((backup / "manifest.json").read_text())
        n = taken["files"]["system.db"]["counts"]["transactions"]
        _wait_for_transactions(db, n, proc)  # the demo went on trading after the backup
        capsys.readouterr()
        assert cli(["restore", str(backup), "--data-dir", str(data)]) == 1  # it is running
        assert "AutoTrader is running" in capsys.readouterr().err
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    final = transactions(db)
    assert len(final) > n > 0

    assert cli(["restore", str(backup), "--data-dir", str(data)]) == 0
    restored = transactions(db)
    assert restored == final[:n]
    assert _order_fill_mismatches(db) == []
    # The restored folder runs again: the demo resumes from the restored state.
    again = subprocess.run([*cmd, "--minutes", "2"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 0, again.stderr[-2000:]
    assert transactions(db)[:n] == restored


def test_restore_onto_a_new_machine(populated: Path, tmp_path: Path, monkeypatch) -> None:
    """A fresh data folder and no config yet: the backup becomes the whole set-up."""
    cfg = tmp_path / "old.toml"
    cfg.write_text('[demo]\nspeed = 120.0\n')
    cfg.chmod(0o600)
    assert cli(["backup", "--data-dir", str(populated), "--config", str(cfg), "--archive",
                "--dest", str(tmp_path / "bk")]) == 0
    archive = _only(tmp_path / "bk", "*.tar.gz")
    fresh_home = tmp_path / "newhome"
    monkeypatch.setenv("HOME", str(fresh_home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(fresh_home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(fresh_home / ".local/share"))
    assert cli(["restore", str(archive)]) == 0
    from app.config import load_settings

    s = load_settings()
    assert s.demo.speed == 120.0  # the config came back to the default place
    assert s.data_path == fresh_home / ".local/share/autotrader/demo"  # default: one per mode
    assert transactions(s.system_db_path) == transactions(populated / "system.db")
    assert not (s.data_path / "backups").exists()  # nothing was there to keep


def test_keep_prunes_only_older_automatic_backups(populated: Path, tmp_path: Path,
                                                  capsys) -> None:
    dest = tmp_path / "bk"
    dest.mkdir()
    # Older backups of both shapes, a pre-restore copy and a stranger: only the first go.
    for name in ("autotrader-backup-20240101-000000Z", "autotrader-backup-20240102-000000Z"):
        (dest / name).mkdir()
    (dest / "autotrader-backup-20240103-000000Z.tar.gz").write_bytes(b"x")
    (dest / "before-restore-20240101-000000Z").mkdir()
    (dest / "notes.txt").write_text("mine")
    assert cli(["backup", "--data-dir", str(populated), "--dest", str(dest), "--keep", "2"]) == 0
    out = capsys.readouterr().out
    left = sorted(p.name for p in dest.iterdir())
    assert left[:2] == ["autotrader-backup-20240103-000000Z.tar.gz", left[1]]
    assert left[1].startswith("autotrader-backup-2") and left[1] > "autotrader-backup-2024"
    assert "before-restore-20240101-000000Z" in left and "notes.txt" in left
    assert len(left) == 4
    assert "removed the older backup autotrader-backup-20240101-000000Z" in out
    assert cli(["backup", "--data-dir", str(populated), "--dest", str(dest), "--keep", "0"]) == 1


def test_restore_replaces_a_broken_config(populated: Path, tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "autotrader.toml"
    cfg.write_text('[demo]\nspeed = 45.0\n')
    assert cli(["backup", "--data-dir", str(populated), "--config", str(cfg),
                "--dest", str(tmp_path / "bk")]) == 0
    backup = _only(tmp_path / "bk", "autotrader-backup-*")
    cfg.write_text("this is [not toml")
    capsys.readouterr()
    # A broken config does not stop a backup of the data (with the folder named).
    assert cli(["backup", "--config", str(cfg), "--dest", str(tmp_path / "bk2")]) == 1
    assert cli(["backup", "--config", str(cfg), "--data-dir", str(populated),
                "--dest", str(tmp_path / "bk2")]) == 0
    assert (_only(tmp_path / "bk2", "autotrader-backup-*") / "autotrader.toml").read_text() \
        == "this is [not toml"
    capsys.readouterr()
    # Where the data goes must be said when the config cannot tell.
    assert cli(["restore", str(backup), "--config", str(cfg)]) == 1
    assert "pass --data-dir" in capsys.readouterr().err
    assert cli(["restore", str(backup), "--config", str(cfg), "--data-dir", str(populated)]) == 0
    assert "speed = 45.0" in cfg.read_text()
    assert _only(tmp_path, "autotrader.toml.before-restore-*").read_text() == "this is [not toml"


def test_a_backup_without_the_market_db_leaves_the_bars_alone(populated: Path, tmp_path: Path,
                                                              calendar) -> None:
    assert cli(["backup", "--data-dir", str(populated), "--dest", str(tmp_path / "bk"),
                "--skip-market"]) == 0
    backup = _only(tmp_path / "bk", "autotrader-backup-*")
    assert not (backup / "market.db").exists()
    from db.market import MarketStore

    market = MarketStore(populated / "market.db", calendar)
    market.insert_rows([("MSFT", 1704207600, 370.0, 371.0, 369.0, 370.5, 10)])
    market.close()
    assert cli(["restore", str(backup), "--data-dir", str(populated)]) == 0
    market = MarketStore(populated / "market.db", calendar)
    try:
        assert market.count("MSFT") == 1 and market.count("AAPL") == 30
    finally:
        market.close()


def test_restore_of_a_paper_backup_goes_to_the_paper_folder(populated: Path, tmp_path: Path,
                                                            monkeypatch) -> None:
    """Default data folders are per mode: a paper session must not land in the demo's."""
    from db.system import SystemStore

    system = SystemStore(populated / "system.db")
    system.set_setting("data_mode", "paper")
    system.close()
    assert cli(["backup", "--data-dir", str(populated), "--no-config", "--dest",
                str(tmp_path / "bk")]) == 0
    backup = _only(tmp_path / "bk", "autotrader-backup-*")
    fresh_home = tmp_path / "newhome"
    monkeypatch.setenv("HOME", str(fresh_home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(fresh_home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(fresh_home / ".local/share"))
    assert cli(["restore", "--no-config", str(backup)]) == 0  # no keys here: demo settings
    paper = fresh_home / ".local/share/autotrader/paper"
    assert transactions(paper / "system.db") == transactions(populated / "system.db")
    assert not (fresh_home / ".local/share/autotrader/demo").exists()
