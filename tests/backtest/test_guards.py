"""``backtest --guards``: the live risk guards from the config act in a backtest as they do
live, and the report lists the guard stop (issue 10: a guard that fires is a test in a
backtest too)."""

from __future__ import annotations

import json

from app.cli import main

FLIPPER = '''
from algorithm import position


class Algorithm:
    """Buys 5 when flat, sells everything when holding: an order every minute."""

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        held = position(algo_id)
        return ("sell", held) if held else ("buy", 5)
'''


def _setup(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "flipper.py").write_text(FLIPPER)
    cfg = tmp_path / "autotrader.toml"
    cfg.write_text(f'[engine]\nplugin_dir = "{plugins}"\n\n[risk]\nalgo_max_orders_per_day = 3\n')
    return cfg


def _run(capsys, tmp_path, ref_csv, cfg, *extra):
    out = tmp_path / ("guards" if extra else "plain")
    rc = main(["backtest", "flipper", "REF", "--csv", str(ref_csv), "--config", str(cfg),
               "--data-dir", str(tmp_path / "data"), "--out", str(out), "--no-charts",
               "--start", "2024-03-04", "--end", "2024-03-04", *extra])
    text, err = capsys.readouterr()
    assert (out / "report.json").exists(), f"exit {rc}: {err}"
    return rc, text, err, json.loads((out / "report.json").read_text())


def test_a_guard_stop_is_in_the_report(capsys, tmp_path, ref_csv):
    cfg = _setup(tmp_path)
    rc, text, err, rep = _run(capsys, tmp_path, ref_csv, cfg, "--guards")
    assert rc == 0, err
    guards = [p for p in rep["problems"] if p["kind"] == "guard"]
    assert len(guards) == 1 and "orders" in guards[0]["reason"], guards
    assert f"GUARD STOP {guards[0]['timestamp']}" in text
    # Three orders counted, the fourth (a buy past the limit) stopped it: few fills.
    assert rep["metrics"]["fills"] <= 4
    # Without --guards the same strategy trades all day: the guard was what stopped it.
    rc, text, err, plain = _run(capsys, tmp_path, ref_csv, cfg)
    assert rc == 0, err
    assert not [p for p in plain["problems"] if p["kind"] == "guard"]
    assert plain["metrics"]["fills"] > 100 and "GUARD STOP" not in text


def test_guards_cannot_go_with_the_vector_path(capsys, tmp_path, ref_csv):
    cfg = _setup(tmp_path)
    rc = main(["backtest", "sma_crossover", "REF", "--csv", str(ref_csv), "--config", str(cfg),
               "--guards", "--vector", "--no-charts", "--out", str(tmp_path / "v")])
    assert rc == 2 and "--guards" in capsys.readouterr().err


def test_exact_and_guards_from_the_command_line_process(tmp_path, ref_csv):
    """The real command, as a user runs it (one thread, so the run's child is forked): the
    plugin folder from the config is probed first, which starts a forkserver the forked child
    must not reuse (it failed every run with 'No child processes')."""
    import subprocess
    import sys
    from pathlib import Path

    cfg = _setup(tmp_path)
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(root / "main.py"), "backtest", "flipper", "REF", "--csv",
         str(ref_csv), "--config", str(cfg), "--data-dir", str(tmp_path / "data"), "--out",
         str(tmp_path / "cli"), "--no-charts", "--guards"],
        capture_output=True, text=True, timeout=300, cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "GUARD STOP" in out.stdout and "orders today" in out.stdout
    assert "No child processes" not in out.stdout + out.stderr
