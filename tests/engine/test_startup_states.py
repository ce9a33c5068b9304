"""Start-up states (issue 17) as a user meets them: real processes, real files, a real small
filesystem where the test may mount one."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import fill_disk
from .test_demo_process import ROOT, env_for, run

pytestmark = pytest.mark.slow


def _cli(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT,
                          env=env_for(tmp_path, **extra), capture_output=True, text=True,
                          timeout=60)


def test_minutes_n_runs_exactly_n_ticks(tmp_path: Path):
    run(tmp_path, "--minutes", "7", "--speed", "600")
    log = (tmp_path / "log" / "autotrader.log").read_text()
    assert "scheduler stopped after 7 ticks" in log
    conn = sqlite3.connect(tmp_path / "data" / "system.db")
    last = conn.execute("SELECT value FROM settings WHERE key = 'engine.last_tick'").fetchone()
    assert last[0] == "2024-06-04T13:36:00Z"  # 09:30 ... 09:36 New York: 7 minutes
    # The demo's clock waited for every tick: no order left stale.
    assert conn.execute("SELECT count(*) FROM orders WHERE reason LIKE '%stale%'").fetchone()[0] == 0


def test_missing_plugin_folder_at_start_is_shown_with_what_to_do(tmp_path: Path):
    missing = tmp_path / "usb" / "plugins"
    p = run(tmp_path, "--minutes", "1", "--speed", "600",
            AUTOTRADER_ENGINE_PLUGIN_DIR=str(missing))
    assert f"the plugin folder {missing} is missing" in p.stderr
    assert "start by themselves once it is back" in p.stderr and "create it" in p.stderr
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("what", ["file", "date", "nested-in-file"])
def test_unusable_data_dir_or_bad_start_date_is_one_line_and_exit_2(tmp_path: Path, what):
    oops = tmp_path / "oops"
    oops.write_text("")
    extra = {"date": {"AUTOTRADER_DEMO_START_DATE": "2024-13-45"},
             "file": {"AUTOTRADER_DATA_DIR": str(oops)},
             "nested-in-file": {"AUTOTRADER_DATA_DIR": str(oops / "data")}}[what]
    for args in (("config",), ("run", "--headless", "--minutes", "1")):
        p = _cli(tmp_path, *args, **extra)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
        key = "demo.start_date" if what == "date" else "data_dir"
        assert f"key '{key}'" in lines[0] and "AUTOTRADER_" in lines[0]


def test_bad_start_date_in_the_config_file_names_file_and_key(tmp_path: Path):
    cfg = tmp_path / "autotrader.toml"
    cfg.write_text('[demo]\nstart_date = "2024-13-45"\n')
    env = env_for(tmp_path)
    del env["AUTOTRADER_DEMO_START_DATE"]
    for args in (("config",), ("run", "--headless", "--minutes", "1")):
        p = subprocess.run([sys.executable, "main.py", *args, "--config", str(cfg)], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 2, p.stderr
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
        assert f"{cfg} line 2: key 'demo.start_date': '2024-13-45' is not a real date" \
            in lines[0]


def test_full_disk_at_start_waits_with_what_to_do_and_starts_when_space_is_back(
        small_fs, tmp_path, capsys, monkeypatch):
    from app.config import load_settings
    from app.engine.runner import build_when_disk_allows

    filler = fill_disk(small_fs)
    data = small_fs / "data"
    settings = load_settings(tmp_path / "none.toml", env={
        "AUTOTRADER_DATA_DIR": str(data), "AUTOTRADER_LOG_DIR": str(tmp_path / "log"),
        "AUTOTRADER_DEMO_START_DATE": "2024-06-04", "AUTOTRADER_ENGINE_DISK_PAUSE_MB": "0.5",
        "AUTOTRADER_ENGINE_DISK_WARN_MB": "1"})
    waits: list[float] = []

    def sleep(s: float) -> None:  # instead of waiting: the user frees space after 2 tries
        waits.append(s)
        if len(waits) == 2:
            filler.unlink()

    built = build_when_disk_allows(settings, sleep=sleep)
    assert not isinstance(built, int), capsys.readouterr().err
    engine, _ = built
    try:
        err = capsys.readouterr().err
        assert err.count("WAITING:") == 1 and "free some space" in err  # said once
        assert waits == [5.0, 10.0]  # backoff
        assert engine.storage_problem is None
    finally:
        engine.close()
        engine.system.close()
        engine.market.close()


LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def test_db_locked_by_another_process_at_start_waits_then_starts(tmp_path, capsys):
    """Someone's sqlite3 shell holds the write lock when the service starts: WAITING with
    what to do, then the start goes on (not exit 2, which systemd would never restart)."""
    import time

    from app.config import load_settings
    from app.engine.runner import build_when_disk_allows
    from db.system import SystemStore

    data = tmp_path / "data"
    SystemStore(data / "system.db").close()  # an existing install's DB (WAL)
    settings = load_settings(tmp_path / "none.toml", env={
        "AUTOTRADER_DATA_DIR": str(data), "AUTOTRADER_LOG_DIR": str(tmp_path / "log"),
        "AUTOTRADER_DEMO_START_DATE": "2024-06-04"})
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(data / "system.db"),
                               "7"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    waits: list[float] = []

    def sleep(s: float) -> None:  # a short real wait instead of the 5 s backoff
        waits.append(s)
        time.sleep(0.2)

    try:
        built = build_when_disk_allows(settings, sleep=sleep)
    finally:
        holder.wait(timeout=30)
    assert not isinstance(built, int), capsys.readouterr().err
    engine, _ = built
    try:
        err = capsys.readouterr().err
        assert err.count("WAITING:") == 1, err
        assert "locked by another process" in err and "close the other program" in err
        assert "choose another with --data-dir" not in err
        assert waits and waits[0] == 5.0
    finally:
        engine.close()
        engine.system.close()
        engine.market.close()


def test_window_start_with_the_db_locked_waits_then_starts(tmp_path):
    """The kiosk's case: the window starts while another process holds the DB's write lock
    longer than the busy timeouts add up to. It says what it waits for and starts once the
    lock is gone (it used to show "The engine could not start: database is locked" for good).
    Real window (Qt offscreen) in a child process."""
    run(tmp_path, "--minutes", "1", "--speed", "600")  # an existing install
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER,
                               str(tmp_path / "data" / "system.db"), "20"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    try:
        p = subprocess.run([sys.executable, "main.py", "run", "--minutes", "1", "--speed",
                            "600"], cwd=ROOT,
                           env=env_for(tmp_path, QT_QPA_PLATFORM="offscreen"),
                           capture_output=True, text=True, timeout=150)
    finally:
        holder.wait(timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "locked by another process" in p.stderr and "starts by itself" in p.stderr
    log = (tmp_path / "log" / "autotrader.log").read_text()
    assert log.count("scheduler running") == 2  # the first run's and this one's, after the wait


def test_a_plugin_file_that_exits_when_imported_does_not_take_the_app_down(tmp_path: Path):
    """A file in the plugin folder whose module code calls os._exit(1): the app used to die
    at every start (exit 1, no word of which plugin: a crash loop under systemd)."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "boom.py").write_text("import os\nos._exit(1)\n")
    p = run(tmp_path, "--minutes", "2", "--speed", "600",
            AUTOTRADER_ENGINE_PLUGIN_DIR=str(plugins))
    assert f"plugin {plugins / 'boom.py'} is broken: importing it ended its process: it " \
           "exited with code 1" in p.stderr
    assert "scheduler stopped after 2 ticks" in (tmp_path / "log" / "autotrader.log").read_text()
