"""The real program with a window: ``main.py --kiosk`` offscreen, demo mode, stops by itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_window_app_runs_the_demo_and_exits_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APCA_", "AUTOTRADER_"))}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_STATE_HOME=str(tmp_path / "state"))
    r = subprocess.run(
        [sys.executable, "main.py", "--kiosk", "--minutes", "4", "--speed", "240",
         "--data-dir", str(tmp_path / "data")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "window shown on the offscreen platform (fullscreen)" in out
    assert "first demo start: created 3 demo algorithms" in out
    assert "tick " in out and "--minutes 4 reached" in out
    assert "scheduler stopped" in out
    assert (tmp_path / "data" / "system.db").exists()
