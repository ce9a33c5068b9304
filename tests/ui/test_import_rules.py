"""Nothing below the UI imports Qt: the engine runs headless, in backtests and in plain pytest.

Checked in a fresh interpreter, importing every module of the Qt-free packages.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QT_FREE = ["app/engine", "app/broker", "app/marketdata", "app/backtest", "db", "algorithm"]
EXTRA = ["app.security", "app.config", "db.calendar", "app.clock", "db.timeutil",
         "app.logging_setup"]


def modules() -> list[str]:
    out = list(EXTRA)
    for pkg in QT_FREE:
        for f in sorted((ROOT / pkg).glob("*.py")):
            parts = f.relative_to(ROOT).with_suffix("").parts
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def test_core_imports_no_qt() -> None:
    mods = modules()
    assert "app.engine.facade" in mods and "app.broker.simulated" in mods
    code = (
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules\n"
        "              if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'PyQt6')}))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]", r.stdout


def test_lock_screen_shows_before_pyqtgraph_loads(tmp_path) -> None:
    """The window (with its lock screen) is built without pyqtgraph; Detail brings it."""
    code = (
        "import os, sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from app.config import load_settings\n"
        "from app.ui.window import MainWindow\n"
        "from db.system import SystemStore\n"
        f"s = load_settings(overrides={{'data_dir': {str(tmp_path)!r}}})\n"
        "w = MainWindow(s, SystemStore(s.system_db_path), run_scheduler=False)\n"
        "w.resize(800, 480)\n"
        "w.show()\n"
        "app.processEvents()\n"
        "print('before', 'pyqtgraph' in sys.modules, w.current_page())\n"
        "w.show_page('detail')\n"
        "print('after', 'pyqtgraph' in sys.modules, w.chart.count)\n"
        "w.shutdown()\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.split("\n")
    assert "before False lock" in lines and "after True 0" in lines, r.stdout
