"""The first-frame marker (app/ops/kioskready.py) that pi-upgrade.sh waits for: written by the
real window app, offscreen, only once a frame has rendered, with the writer's pid and venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.ops.kioskready import marker_text, read_ready, write_ready

ROOT = Path(__file__).resolve().parents[2]


def test_marker_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ready"
    assert write_ready(path, "1.2.3")
    got = read_ready(path)
    assert got["pid"] == str(os.getpid()) and got["prefix"] == os.path.realpath(sys.prefix)
    assert got["version"] == "1.2.3" and got["time"].endswith("Z")
    assert not list(tmp_path.glob(".ready.*"))  # no temporary file left


def test_unwritable_marker_is_a_log_line_not_an_error(tmp_path: Path) -> None:
    assert write_ready(tmp_path / "missing-folder" / "ready", "1.0") is False
    assert read_ready(tmp_path / "missing-folder" / "ready") == {}


def test_marker_is_key_value_lines_for_the_shell() -> None:
    text = marker_text("0.1.0", pid=42, prefix="/opt/autotrader/venvs/x", now=0)
    assert text.splitlines() == ["pid=42", "prefix=/opt/autotrader/venvs/x", "version=0.1.0",
                                 "time=1970-01-01T00:00:00Z"]


def test_window_app_writes_the_marker_after_its_first_frame(tmp_path: Path) -> None:
    ready = tmp_path / "run" / "ready"
    ready.parent.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AUTOTRADER_"))}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), AUTOTRADER_READY_FILE=str(ready),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_STATE_HOME=str(tmp_path / "state"))
    proc = subprocess.Popen(
        [sys.executable, "main.py", "--kiosk", "--minutes", "1", "--speed", "240",
         "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out[-3000:]
    got = read_ready(ready)
    assert got.get("pid") == str(proc.pid), (got, out[-2000:])
    assert got["prefix"] == os.path.realpath(sys.prefix)
    assert "first frame shown" in out
