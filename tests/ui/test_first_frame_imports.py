"""The lock screen's first frame waits only for the PIN pad (issue 15, start to first frame):
the window opens as ``run_gui`` opens it (``start_window``), with the pad alone; its settings
are read with plain sqlite3, and sqlite-utils, the migrations, the ``db`` package, the other
pages' modules and the engine (which brings numpy and pandas) load after that frame, as do
the ``Qt`` namespace's Python enums (the ``db`` package itself is imported for
``db.settings_peek``: its stores load lazily). Checked
in a fresh interpreter, the real window offscreen, on an empty data folder (first start) and
on one with a PIN set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Not imported when the lock screen's first frame is drawn.
AFTER_FIRST_FRAME = (
    "sqlite_utils", "db.connection", "db.migrations", "db.system", "db.market",
    "db.calendar", "app.engine", "app.ui.header", "app.ui.dashboard", "app.ui.detail",
    "app.ui.newalgo", "app.ui.performance", "app.ui.settings_vm", "app.ui.workers",
    "app.ui.backtest_job", "numpy", "pandas", "pyqtgraph",
)

CHILD = r"""
import sys
import PySide6.QtCore as QtCore
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
# PySide builds the ``Qt`` namespace's ~100 Python enums at its first use (15-40 ms), where
# it loads types lazily (6.11 does).
lazy_qt = "Qt" not in QtCore.__dict__
from app.config import load_settings
from app.ui.app import start_after_first_frame, start_window
s = load_settings(overrides={"data_dir": sys.argv[1]})
startup = start_window(s, run_scheduler=False)
w = startup.window
w.resize(800, 480)
seen = {}
def frame():
    if "frame" not in seen:
        seen["frame"] = 1
        loaded = [m for m in sys.argv[2].split(",") if m in sys.modules]
        print("frame", w.current_page(), w.finished, w.lock_vm.mode, "loaded:" + ",".join(loaded),
              flush=True)
        print("Qt namespace built:", lazy_qt and "Qt" in QtCore.__dict__, flush=True)
def whole():
    print("finished", w.finished, startup.system is not None, startup.builder is not None,
          flush=True)
def built(engine, scheduler):
    import numpy
    QTimer.singleShot(0, lambda: (print("engine", w.engine is not None, numpy.asarray([1, 2]).sum(),
                                        flush=True), app.quit()))
startup.on_built.append(built)
w.pages["lock"].quickWindow().afterRendering.connect(frame)
w.show()
start_after_first_frame(w, whole)
QTimer.singleShot(90_000, app.quit)
app.exec()
startup.wait()
w.shutdown()
for store in startup.stores():
    store.close()
"""


def run_child(data: Path) -> list[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, "-c", CHILD, str(data), ",".join(AFTER_FIRST_FRAME)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.splitlines()


@pytest.mark.parametrize("pin_set", [False, True])
def test_lock_screen_first_frame_waits_for_nothing_else(tmp_path, pin_set) -> None:
    data = tmp_path / "data"
    if pin_set:
        from app.security import PinGuard
        from db.system import SystemStore

        store = SystemStore(data / "system.db")
        PinGuard(store).set_pin("246813")
        store.close()
    lines = run_child(data)
    # The pad alone, in the right mode, and none of the rest loaded yet.
    mode = "unlock" if pin_set else "setup"
    assert f"frame lock False {mode} loaded:" in lines, lines
    assert "Qt namespace built: False" in lines, lines
    # Right after it: the rest of the window, the system store, the engine's builder.
    assert "finished True True True" in lines, lines
    assert "engine True 3" in lines, lines  # the engine came after it, numpy works there


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
