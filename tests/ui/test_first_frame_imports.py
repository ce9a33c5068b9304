"""The lock screen's first frame does not wait for numpy or pandas (issue 15, start to first
frame): sqlite-utils is loaded with both hidden, the window's modules import numpy only where
it is used, and the engine (which may bring them) is built after that frame, as ``run_gui``
does. Checked in a fresh interpreter, the real window offscreen on an empty data folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.config import load_settings
from app.ui.app import start_after_first_frame
from app.ui.window import MainWindow
from app.ui.workers import EngineBuilder
from db.system import SystemStore
s = load_settings(overrides={"data_dir": sys.argv[1]})
w = MainWindow(s, SystemStore(s.system_db_path), run_scheduler=False)
w.resize(800, 480)
builder = EngineBuilder(s)
seen = {}
def frame():
    if "frame" not in seen:
        seen["frame"] = 1
        print("frame", w.current_page(), "numpy" in sys.modules, "pandas" in sys.modules,
              "sqlite_utils" in sys.modules, flush=True)
def built(engine, scheduler):
    w.attach_engine(engine, scheduler)
    import numpy
    print("engine", w.engine is not None, numpy.asarray([1, 2]).sum(), flush=True)
    QTimer.singleShot(0, app.quit)
builder.built.connect(built)
builder.failed.connect(lambda e: (print("failed", e, flush=True), app.quit()))
w.pages["lock"].quickWindow().afterRendering.connect(frame)
w.show()
start_after_first_frame(w, builder.start)
QTimer.singleShot(90_000, app.quit)
app.exec()
builder.wait()
w.shutdown()
"""


def test_lock_screen_first_frame_without_numpy_or_pandas(tmp_path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "data")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    # sqlite-utils itself still loads before the frame (the GUI thread's system DB and its
    # migrations use it); numpy and pandas do not.
    assert "frame lock False False True" in lines, r.stdout
    assert "engine True 3" in lines, r.stdout  # the engine came after it, numpy works there


def test_numpy_and_pandas_import_after_db_loaded_them_hidden() -> None:
    """Hiding them while sqlite-utils loads leaves nothing behind: both import afterwards,
    and a store's writes and reads work."""
    code = (
        "import sys\n"
        "import db.connection\n"
        "assert 'numpy' not in sys.modules and 'pandas' not in sys.modules\n"
        "assert 'sqlite_utils' in sys.modules\n"
        "from db.system import SystemStore\n"
        "s = SystemStore(':memory:')\n"
        "s.set_setting('k', 'v')\n"
        "import numpy, pandas\n"
        "print(s.get_setting('k'), numpy.float64(1.5) * 2, pandas.Series([1, 2]).sum())\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["v", "3.0", "3"], r.stdout
