"""Plugin discovery and loading: built-ins, user folders, broken plugins, parameters."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.engine.plugins import (
    PluginNotFoundError,
    coerce_params,
    discover_plugins,
    load_plugin,
    make_class,
)
from tests.engine.conftest import BROKEN, PLUGINS


def test_builtin_reference_plugin_is_listed_with_its_parameters():
    infos = {p.name: p for p in discover_plugins([])}
    sma = infos["sma_crossover"]
    assert sma.error is None and sma.cls is not None
    assert sma.params == {"sma_short": 20, "sma_long": 50}
    assert "SMA" in sma.description
    assert all(not name.startswith("_") for name in infos)


def test_broken_plugins_are_listed_with_their_error_and_the_good_one_loads(tmp_path: Path):
    folder = tmp_path / "plugins"
    shutil.copytree(BROKEN, folder)
    # Written here, not kept in the repo, so the linter does not trip over it.
    (folder / "syntax_error.py").write_text("class Algorithm:\n    def run(self\n")
    infos = {p.name: p for p in discover_plugins([folder])}
    assert infos["good"].ok
    assert "SyntaxError" in infos["syntax_error"].error
    assert "line" in infos["syntax_error"].error
    assert "ModuleNotFoundError" in infos["import_error"].error
    assert "module_that_does_not_exist" in infos["import_error"].error
    assert "ZeroDivisionError" in infos["raises_on_import"].error
    assert "(line 1)" in infos["raises_on_import"].error
    assert "no run()" in infos["no_run"].error
    assert "must be a class" in infos["not_a_class"].error
    assert "must be a class defined in this module" in infos["imported_class"].error
    # the built-ins are unaffected
    assert infos["sma_crossover"].ok


def test_helpers_are_not_plugins_and_a_name_clash_is_reported(tmp_path: Path):
    infos = {p.name: p for p in discover_plugins([PLUGINS])}
    assert "_helper" not in infos and "not_a_plugin" not in infos
    assert infos["scripted"].ok
    assert infos["uses_helper"].ok  # a helper beside the plugin can be imported
    (tmp_path / "sma_crossover.py").write_text("class Algorithm:\n    def run(self, t, a):\n"
                                                "        return ('hold', 0)\n")
    clash = [p for p in discover_plugins([tmp_path]) if p.path == tmp_path / "sma_crossover.py"]
    assert clash and "exists already" in clash[0].error


def test_missing_plugin_folder_is_not_fatal(tmp_path: Path):
    infos = discover_plugins([tmp_path / "nope"])
    assert any(p.name == "sma_crossover" for p in infos)


def test_load_plugin_by_name():
    assert load_plugin("scripted", [PLUGINS]).ok
    with pytest.raises(PluginNotFoundError):
        load_plugin("nonexistent", [PLUGINS])


def test_parameters_are_checked_converted_and_seen_by_init():
    info = load_plugin("sma_crossover", [])
    assert coerce_params(info, {"sma_short": "10", "sma_long": 30.0}) == {
        "sma_short": 10, "sma_long": 30}
    with pytest.raises(ValueError, match="no parameter 'smaa'"):
        coerce_params(info, {"smaa": 3})
    with pytest.raises(ValueError, match="must be a whole number"):
        coerce_params(info, {"sma_short": 2.5})
    with pytest.raises(ValueError, match="must be a whole number"):
        coerce_params(info, {"sma_short": "ten"})
    cls = make_class(info, {"sma_short": 5})
    obj = cls("AAPL", 1000.0)
    assert obj.sma_short == 5 and obj.sma_long == 50
    assert info.cls.sma_short == 20  # the plugin's own class is untouched


def test_a_user_plugin_is_executed_again_only_when_its_file_changes(tmp_path: Path):
    import os

    f = tmp_path / "counter.py"
    f.write_text("import builtins\nbuiltins.COUNTER_RUNS = getattr(builtins, 'COUNTER_RUNS', 0) + 1\n"
                 "class Algorithm:\n    v = 1\n    def run(self, t, a):\n        return ('hold', 0)\n")
    import builtins

    discover_plugins([tmp_path])
    discover_plugins([tmp_path])
    assert builtins.COUNTER_RUNS == 1
    f.write_text(f.read_text().replace("v = 1", "v = 22"))
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    [info] = [p for p in discover_plugins([tmp_path]) if p.name == "counter"]
    assert builtins.COUNTER_RUNS == 2 and info.params == {"v": 22}
    del builtins.COUNTER_RUNS


GOOD = '''
class Algorithm:
    """Holds."""

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return ("hold", 0)
'''


def test_module_code_that_ends_or_hangs_its_process_is_listed_broken_not_run_here(
        tmp_path: Path, monkeypatch):
    """Each user file is imported first in a throwaway process: module-level os._exit (even
    with code 0) or an endless loop marks that plugin broken; the app (this test process)
    never runs that code. Fixed files are checked again and load."""
    import sys
    import time

    import app.engine.plugins as plugins

    monkeypatch.setattr(plugins, "PROBE_SECONDS", 3.0)
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "boom.py").write_text("import os\nos._exit(1)\n")
    (folder / "zero.py").write_text("import os\nos._exit(0)\n")
    (folder / "spin.py").write_text("while True:\n    pass\n")
    (folder / "good.py").write_text(GOOD)
    t0 = time.monotonic()
    infos = {p.name: p for p in discover_plugins([folder])}
    assert time.monotonic() - t0 < 15  # all checked at once, the spinner cut at 3 s
    assert infos["good"].ok
    assert infos["boom"].error == "importing it ended its process: it exited with code 1"
    assert "exited with code 0" in infos["zero"].error
    assert infos["spin"].error.startswith("importing it took longer than 3 s")
    assert "autotrader_user_plugins.boom" not in sys.modules  # never imported here
    # Listing again runs nothing new; a fixed file is checked again and loads.
    (folder / "boom.py").write_text(GOOD + "\n# fixed\n")
    infos = {p.name: p for p in discover_plugins([folder])}
    assert infos["boom"].ok and not infos["spin"].ok



_NEXT_START = """
import json, sys, time
import app.engine.plugins as plugins
plugins.PROBE_SECONDS = 6.0
t0 = time.monotonic()
infos = {p.name: p.error for p in plugins.discover_plugins([__import__("pathlib").Path(sys.argv[1])])}
print(json.dumps({"seconds": time.monotonic() - t0, "spin": infos["spin"], "good": infos["good"]}))
"""


def test_a_hanging_plugin_file_costs_its_probe_time_once_not_at_every_start(
        tmp_path: Path, monkeypatch):
    """The probe's verdicts are kept (path, mtime, size, SHA-256, helper files beside it): the
    next start (a new process here) lists the hanging file as broken at once; a change to it
    or to a helper beside it checks it again."""
    import json
    import os
    import subprocess
    import sys

    from app.engine import plugins

    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "spin.py").write_text("while True:\n    pass\n")
    (folder / "good.py").write_text(GOOD)
    (folder / "_helper.py").write_text("X = 1\n")
    root = Path(__file__).resolve().parents[2]

    def start() -> dict:
        out = subprocess.run([sys.executable, "-c", _NEXT_START, str(folder)], cwd=root,
                             capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(root)})
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    first = start()  # (kept only when the file's own code ran for half the limit or more)
    assert first["seconds"] >= 6.0 and first["spin"].startswith("importing it took longer")
    assert first["good"] is None
    assert plugins.verdict_file().exists()
    assert oct(plugins.verdict_file().stat().st_mode & 0o777) == "0o600"
    second = start()
    assert second["seconds"] < 6.0, second  # no probe waited out again
    assert second["spin"] == first["spin"] and second["good"] is None
    (folder / "_helper.py").write_text("X = 2\n")  # a helper beside it changed: checked again
    assert start()["seconds"] >= 6.0
    (folder / "spin.py").write_text(GOOD)  # fixed: checked again, and loads
    fixed = start()
    assert fixed["spin"] is None and fixed["good"] is None
