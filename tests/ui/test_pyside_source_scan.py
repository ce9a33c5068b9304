"""PySide6's import hook still tells PySide modules from others, without caching sources.

Runs in a fresh interpreter: the hook only sees modules imported after PySide6, and the test
process has imported everything long before.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCENE = textwrap.dedent("""
    import linecache, os, sys
    sys.path.insert(0, os.getcwd())
    sys.path.insert(0, sys.argv[1])
    import PySide6.QtCore
    from app.ui.pyside_source_scan import install
    print(install(), install()) if sys.argv[2] == "patched" else print("- -")
    import uses_qt, plain_module
    d = sys.modules["shibokensupport.feature"].pyside_feature_dict
    print(d["uses_qt"], d["plain_module"])
    print(sum(1 for f in linecache.cache if f.endswith(("uses_qt.py", "plain_module.py"))))
""")


def scene(folder, mode: str) -> list[str]:
    (folder / "uses_qt.py").write_text("from PySide6.QtCore import QObject\n")
    (folder / "plain_module.py").write_text("X = 1\n")
    out = subprocess.run([sys.executable, "-c", SCENE, str(folder), mode], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


def test_hook_answers_from_the_file_and_leaves_linecache_empty(tmp_path):
    installed, feature, cached = scene(tmp_path, "patched")
    assert installed == "True False"  # the second call finds it done
    # 0 = a PySide module (features may be switched on), -1 = ignored: PySide's own codes
    assert feature == "0 -1"
    assert cached == "0", "no module source should be kept in linecache"


def test_without_it_pyside_caches_every_imported_source(tmp_path):
    """What the fix is for: PySide's own hook gives the same answers and keeps the text."""
    _, feature, cached = scene(tmp_path, "stock")
    assert feature == "0 -1"
    assert cached == "2"
