"""``autotrader doctor`` on healthy, damaged and misconfigured set-ups (real files)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from app.cli import main as cli


def doctor(capsys, *args: str) -> tuple[int, str, list[dict]]:
    rc = cli(["doctor", "--offline", *args])
    text = capsys.readouterr().out
    rc_json = cli(["doctor", "--offline", "--json", *args])
    findings = json.loads(capsys.readouterr().out)
    assert rc == rc_json
    return rc, text, findings


def by_check(findings: list[dict]) -> dict[str, dict]:
    return {f["check"]: f for f in findings}


def test_healthy_setup_passes(populated: Path, capsys) -> None:
    rc, text, findings = doctor(capsys, "--data-dir", str(populated))
    assert rc == 0, text
    f = by_check(findings)
    assert f["config"]["level"] == "ok"
    assert f["data folder"]["level"] == "ok"
    assert f["system DB"]["level"] == "ok" and "transactions 3" in f["system DB"]["message"]
    assert f["market DB"]["level"] == "ok" and "bars 30" in f["market DB"]["message"]
    assert f["broker"]["level"] == "info"  # no keys: demo
    assert "everything looks right" in text or "no problem" in text


def test_fresh_install_is_not_a_problem(tmp_path: Path, capsys) -> None:
    rc, text, findings = doctor(capsys, "--data-dir", str(tmp_path / "new"))
    assert rc == 0, text
    f = by_check(findings)
    assert f["data folder"]["level"] == "info" and "first start" in f["data folder"]["message"]


def test_corrupt_system_db_is_a_problem_with_a_fix(populated: Path, capsys) -> None:
    path = populated / "system.db"
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 3 * page
    # Scribble over the second page (a b-tree page): the header stays valid, the tree does not.
    data[page + 8:page + 600] = b"\xa5" * 592
    path.write_bytes(bytes(data))
    rc, text, findings = doctor(capsys, "--data-dir", str(populated))
    assert rc == 1
    f = by_check(findings)["system DB"]
    assert f["level"] == "FAIL"
    assert "damaged" in f["message"] or "cannot be used" in f["message"]
    assert "autotrader restore" in f["fix"]
    assert by_check(findings)["market DB"]["level"] == "ok"
    assert "fix: stop AutoTrader and restore" in text


def test_a_file_that_is_not_a_db(populated: Path, capsys) -> None:
    (populated / "market.db").write_text("hello")
    rc, text, findings = doctor(capsys, "--data-dir", str(populated))
    assert rc == 1
    assert "not a SQLite database" in by_check(findings)["market DB"]["message"]


def test_misconfigured_file_names_the_line_and_checks_go_on(populated: Path, tmp_path: Path,
                                                            capsys) -> None:
    cfg = tmp_path / "autotrader.toml"
    cfg.write_text('mode = "demo"\n[demo]\nspeed = -5\n')
    rc, text, findings = doctor(capsys, "--config", str(cfg), "--data-dir", str(populated))
    assert rc == 1
    f = by_check(findings)
    assert f["config"]["level"] == "FAIL"
    assert str(cfg) in f["config"]["message"] and "demo.speed" in f["config"]["message"]
    assert f["system DB"]["level"] == "ok"  # the rest still ran
    assert f["broker"]["message"] == "not checked: fix the config first"


def test_keys_in_a_file_others_can_read(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "autotrader.toml"
    cfg.write_text('[alpaca]\nkey_id = "PK' 'AAAAAAAAAAAAAAAAAA"\nsecret_key = "s3cr3t-s3cr3t"\n')
    cfg.chmod(0o644)
    rc, text, findings = doctor(capsys, "--config", str(cfg), "--data-dir", str(tmp_path / "d"))
    assert rc == 1
    assert "chmod 600" in by_check(findings)["config"]["message"]
    assert "s3cr3t" not in text


def test_data_dir_that_is_a_file(tmp_path: Path, capsys) -> None:
    f = tmp_path / "oops"
    f.write_text("")
    rc, text, findings = doctor(capsys, "--data-dir", str(f))
    assert rc == 1
    assert by_check(findings)["data folder"]["message"].endswith("is a file, not a folder")


def test_older_schema_warns_and_newer_schema_fails(populated: Path, capsys) -> None:
    conn = sqlite3.connect(populated / "system.db")
    last = conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = "
                        "'autotrader-system' ORDER BY rowid DESC LIMIT 1").fetchone()[0]
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = ?", (last,))
    conn.commit()
    rc, text, findings = doctor(capsys, "--data-dir", str(populated))
    f = by_check(findings)["system DB"]
    assert rc == 0 and f["level"] == "warn" and last in f["message"]
    assert "autotrader backup" in f["fix"]

    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES "
                 "('autotrader-system', ?, '2024'), ('autotrader-system', 'm999_future', '2030')",
                 (last,))
    conn.commit()
    conn.close()
    rc, text, findings = doctor(capsys, "--data-dir", str(populated))
    f = by_check(findings)["system DB"]
    assert rc == 1 and f["level"] == "FAIL" and "newer AutoTrader" in f["message"]


def test_doctor_changes_nothing(populated: Path, capsys) -> None:
    before = {p.name: p.read_bytes() for p in populated.iterdir() if p.suffix == ".db"}
    doctor(capsys, "--data-dir", str(populated))
    after = {p.name: p.read_bytes() for p in populated.iterdir() if p.suffix == ".db"}
    assert before == after


def test_doctor_names_the_running_process(holder, populated: Path, capsys) -> None:
    rc, text, findings = doctor(capsys, "--data-dir", str(populated))
    assert rc == 0
    assert f"AutoTrader is running (process {holder.pid})" in by_check(findings)["running"][
        "message"]


def test_kiosk_screen_device(tmp_path: Path, populated: Path) -> None:
    """The Pi install's eglfs.json must name a display device that exists."""
    from app.config import Settings
    from app.ops.doctor import Doctor

    kiosk = tmp_path / "etc"
    kiosk.mkdir()
    settings = Settings(data_dir=str(populated))

    def screen() -> dict:
        d = Doctor(settings, offline=True, kiosk_dir=kiosk)
        d.check_kiosk_display()
        return {f.check: f for f in d.findings}.get("screen")

    assert screen() is None  # not a kiosk install: nothing to say
    (kiosk / "eglfs.json").write_text('{"device": "/dev/dri/card9-not-here"}')
    f = screen()
    assert f.level == "FAIL" and "card9-not-here" in f.message and f.fix
    (kiosk / "eglfs.json").write_text('{"device": "/dev/null", "hwcursor": false}')
    assert screen().level == "ok"
    (kiosk / "eglfs.json").write_text('{"device": ')
    assert screen().level == "FAIL"


def test_file_modes_of_private_files_are_checked_with_the_chmod_fix(populated: Path,
                                                                   tmp_path: Path,
                                                                   capsys) -> None:
    import os

    cfg = tmp_path / "autotrader.toml"
    cfg.write_text('mode = "demo"\n')
    backups = populated / "backups" / "autotrader-backup-x"
    backups.mkdir(parents=True)
    (backups / "system.db").write_bytes(b"")
    for p, mode in [(populated, 0o700), (cfg, 0o600), (populated / "backups", 0o700),
                    (backups, 0o700), (backups / "system.db", 0o600)]:
        os.chmod(p, mode)
    for db in populated.glob("*.db*"):
        os.chmod(db, 0o600)
    args = ("--config", str(cfg), "--data-dir", str(populated))
    _, _, findings = doctor(capsys, *args)
    assert by_check(findings)["file modes"]["level"] == "ok"

    os.chmod(populated, 0o755)
    os.chmod(populated / "system.db", 0o644)
    os.chmod(backups / "system.db", 0o640)
    os.chmod(cfg, 0o644)
    rc, text, findings = doctor(capsys, *args)
    f = by_check(findings)["file modes"]
    assert f["level"] == "warn", f
    assert "system.db (0644)" in f["message"] and "readable by other users" in f["message"]
    assert f["fix"].startswith(f"chmod 700 {populated}")
    for p in (populated / "system.db", backups / "system.db", cfg):
        assert str(p) in f["fix"]
    os.system(f["fix"])  # the printed fix works
    _, _, findings = doctor(capsys, *args)
    assert by_check(findings)["file modes"]["level"] == "ok"


def test_output_is_a_plain_table_off_a_terminal_and_coloured_on_one(populated: Path, capsys,
                                                                      monkeypatch) -> None:
    """Piped (the bundle smoke test greps it): no escape codes, one line per finding at full
    length, its fix on the next line. On a terminal: coloured levels, long findings wrapped
    within the width instead of cut."""
    import io
    import re

    from app.ops.doctor import Finding, report

    rc, text, findings = doctor(capsys, "--data-dir", str(populated))
    assert "\x1b[" not in text
    lines = text.splitlines()
    assert lines[1].split() == ["STATUS", "CHECK", "FINDING"]
    assert re.search(r"system DB .*integrity ok.*transactions 3", text)  # as the smoke test greps
    for f in findings:  # every message whole on one line, whatever its length
        assert any(f["message"] in line and line.split()[0] == f["level"] for line in lines)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.delenv("NO_COLOR", raising=False)
    long = "the clock is not kept in sync with network time: it drifts, and ticks move with it"
    out = Tty()
    report([Finding("config", "ok", "fine"), Finding("wall clock", "warn", long, "set-ntp true"),
            Finding("broker", "FAIL", "bad keys")], out)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    assert "\x1b[33mwarn" in out.getvalue() and "\x1b[1;31mFAIL" in out.getvalue()
    assert all(len(line) <= 60 for line in plain.splitlines())
    assert "ticks move" in plain and "fix: set-ntp true" in plain
    assert plain.rstrip().endswith("1 problem(s) to fix, 1 warning(s)")
