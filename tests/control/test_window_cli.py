"""The window reflects what ``autotrader algo`` does from another process (SSH): the real
window on a real demo engine, its control channel, and the command line as a subprocess.

Only the window's public parts are read: ``w.cards`` (what each card shows) and the log."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QSG_RENDER_LOOP", "basic")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

ROOT = Path(__file__).resolve().parents[2]


def algo(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRADER_", "APCA_"))}
    env.update(HOME=str(data / "home"), XDG_CONFIG_HOME=str(data / "home"),
               AUTOTRADER_LOG_DIR=str(data / "cli-log"))
    return subprocess.run([sys.executable, "main.py", "algo", *args, "--data-dir", str(data)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def short_data():
    d = Path(tempfile.mkdtemp(prefix="atw"))  # a Unix socket path holds ~100 bytes
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_cards_follow_algo_commands_from_another_process(qtbot, short_data: Path,
                                                         caplog) -> None:
    from app.ui.window import MainWindow
    from tests.ui.conftest import FakeTime, make_rig, unlocked_window

    rig = make_rig(short_data)
    w = MainWindow(rig.settings, rig.engine.system, pin_now=FakeTime(),
                   idle_now=FakeTime(1000.0), run_scheduler=False)
    qtbot.addWidget(w)
    try:
        w.attach_engine(rig.engine, rig.scheduler)
        w.resize(800, 480)
        w.show()
        qtbot.waitUntil(lambda: w._engine_started, timeout=10_000)
        unlocked_window(qtbot, w)
        assert (short_data / "control" / "autotrader.sock").exists()
        before = set(w.cards.ids())

        r = algo(short_data, "add", "sma_crossover", "MSFT", "--capital", "2500", "--name",
                 "From SSH", "--json")
        assert r.returncode == 0, r.stderr
        new_id = json.loads(r.stdout)["id"]
        qtbot.waitUntil(lambda: new_id in w.cards.ids(), timeout=15_000)
        card = w.cards.card(new_id)
        assert card["name"] == "From SSH" and card["ticker"] == "MSFT"
        assert set(w.cards.ids()) == before | {new_id}

        r = algo(short_data, "stop", str(new_id))
        assert r.returncode == 0, r.stderr
        qtbot.waitUntil(lambda: w.cards.card(new_id)["status"] == "stopped", timeout=15_000)
        r = algo(short_data, "resume", str(new_id))
        assert r.returncode == 0, r.stderr
        qtbot.waitUntil(lambda: w.cards.card(new_id)["status"] == "running", timeout=15_000)

        bad = algo(short_data, "add", "sma_crossover", "NOPE", "--capital", "100")
        assert bad.returncode == 1 and "refused" in bad.stderr
        assert set(w.cards.ids()) == before | {new_id}  # nothing half-made on the screen

        r = algo(short_data, "delete", str(new_id))
        assert r.returncode == 0, r.stderr
        qtbot.waitUntil(lambda: new_id not in w.cards.ids(), timeout=15_000)
        said = [m for m in caplog.messages if "from the command line" in m]
        assert any("created algorithm" in m for m in said)
        assert any("delete algorithm" in m for m in said)
    finally:
        w.shutdown()
        rig.engine.close()
        rig.engine.system.close()
        rig.engine.market.close()
