"""Backtest isolation (issue 17): a plugin that exits, hangs or fails every call ends THAT run
with a message and a report of what happened; a sweep's other runs go on."""

from __future__ import annotations

import json
import time

from app.backtest.pool import run_isolated
from app.backtest.replay import run_event
from app.backtest.run import Spec, resolve_plugin
from app.backtest.sweep import Job, job_death, job_fn
from app.cli import main
from tests.backtest.conftest import PLUGINS


def _cli(capsys, monkeypatch, *args, timeout: str = "2"):
    monkeypatch.setenv("AUTOTRADER_ENGINE_PLUGIN_DIR", str(PLUGINS))
    monkeypatch.setenv("AUTOTRADER_ENGINE_PLUGIN_TIMEOUT", timeout)
    rc = main(["backtest", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_os_exit_ends_the_run_with_a_report(capsys, monkeypatch, tmp_path, ref_csv):
    out_dir = tmp_path / "r"
    rc, out, err = _cli(capsys, monkeypatch, "exits", "REF", "--csv", ref_csv, "--out",
                        out_dir, "--no-charts")
    assert rc == 1, err
    assert "the plugin process exited with code 1 during run() at 2024-03-04T14:39:00Z" in err
    report = json.loads((out_dir / "report.json").read_text())
    assert report["stopped"].startswith("the plugin process exited with code 1")
    assert report["metrics"]["fills"] == 1 and report["metrics"]["bars"] == 10
    assert "Traceback" not in err


def test_sys_exit_ends_the_run_not_the_command(capsys, monkeypatch, tmp_path, ref_csv):
    out_dir = tmp_path / "r"
    rc, out, err = _cli(capsys, monkeypatch, "exits", "REF", "--csv", ref_csv, "--out",
                        out_dir, "--no-charts", "--param", "how=sys")
    assert rc == 1, err  # not the plugin's 3
    assert "stopped: run() called sys.exit(3) at 2024-03-04T14:39:00Z" in err
    report = json.loads((out_dir / "report.json").read_text())
    assert report["metrics"]["fills"] == 1 and report["decisions"]["hold"] == 8


def test_a_sweep_goes_on_past_a_run_that_exits(capsys, monkeypatch, tmp_path, ref_csv):
    out_dir = tmp_path / "s"
    rc, out, err = _cli(capsys, monkeypatch, "exits", "REF", "--csv", ref_csv, "--out",
                        out_dir, "--no-charts", "--param", "exit_at=10,100000", "--workers", "2")
    assert rc == 1
    summary = json.loads((out_dir / "summary.json").read_text())
    assert len(summary) == 2
    assert summary[0]["stopped"].startswith("the plugin process exited with code 1")
    assert summary[1]["stopped"] is None and summary[1]["metrics"]["bars"] == 1170
    assert "failed: REF {'exit_at': '10'}: the plugin process exited" in err


def test_every_call_failed_exits_2(capsys, monkeypatch, tmp_path, ref_csv):
    rc, out, err = _cli(capsys, monkeypatch, "always_raises", "REF", "--csv", ref_csv,
                        "--out", tmp_path / "r", "--no-charts", "--end", "2024-03-04")
    assert rc == 2
    assert "every call of the plugin failed" in err
    assert "run() raised ValueError: nope" in out


def test_a_hanging_plugin_is_stopped_after_n_timeouts_in_a_row(ref_bars):
    info = resolve_plugin("hangs", (PLUGINS,))
    t0 = time.perf_counter()
    r = run_event(info, {}, ref_bars, 0, 1000.0, timeout_s=0.2, max_timeouts=4)
    assert time.perf_counter() - t0 < 30  # not 1,168 minutes x 0.2 s
    assert r.errors == 4 and r.decisions["hold"] == 2
    assert r.stopped.startswith("stopped early: run() overran the 0.2 s time limit 4 times "
                                "in a row (last at 2024-03-04T14:35:00Z)")
    assert r.problems[-1]["kind"] == "stopped" and len(r.ts) == 6


def test_a_plugin_deaf_to_the_watchdog_is_killed_by_the_parent(ref_bars, tmp_path):
    spec = Spec("hangs", "REF", capital=1000.0, plugin_dirs=(PLUGINS,), params={"deaf": True},
                timeout_s=0.2)
    job = Job(spec, (ref_bars, 0), tmp_path, False)
    good = Job(Spec("buy_and_hold", "REF", capital=1000.0), (ref_bars.slice(0, 400), 0),
               tmp_path, False)
    hung, fine = run_isolated(job_fn, [job, good], job_death, workers=2, stall_s=1.5)
    assert hung["stopped"].startswith("the plugin process stopped responding for 1.5 s and "
                                      "was killed during run() at 2024-03-04T14:32:00Z")
    assert hung["report"]["metrics"]["bars"] == 3
    assert fine["stopped"] is None and fine["report"]["metrics"]["bars"] == 400


TALKER = '''
class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        for i in range(3):
            print("talk", current_time, i)
        return ("hold", 0)
'''

FORKER = '''
import os


class Algorithm:
    pid_file = ""

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        if os.fork() == 0:
            with open(self.pid_file, "w") as f:
                f.write(str(os.getpid()))
            while True:
                pass
        while not os.path.exists(self.pid_file):
            pass
        os._exit(1)
'''


def test_plugin_print_flood_in_a_backtest_is_capped(ref_bars, tmp_path, capfd, monkeypatch):
    """3 lines a minute for 400 minutes: 200 lines shown, the rest counted once."""
    import multiprocessing as mp

    import app.backtest.pool as pool

    # A forked child writes to this test's captured fds; a forkserver started by an earlier
    # test would hand its children the fds it had then (the cap is the same either way).
    monkeypatch.setattr(pool, "_context", lambda: mp.get_context("fork"))
    (tmp_path / "talker.py").write_text(TALKER)
    job = Job(Spec("talker", "REF", capital=1000.0, plugin_dirs=(tmp_path,)),
              (ref_bars.slice(0, 400), 0), tmp_path, False)
    [r] = run_isolated(job_fn, [job], job_death)
    out, err = capfd.readouterr()
    assert r["stopped"] is None and r["report"]["metrics"]["bars"] == 400
    talk = [ln for ln in (out + err).splitlines() if ln.startswith("talk ")]
    assert len(talk) == 200, len(talk)
    assert "(1,000 more lines of plugin output were not shown: at most 200 a run)" in err


def test_what_a_backtest_plugin_forks_dies_with_its_run(ref_bars, tmp_path):
    from tests.engine.test_plugin_processes import _gone
    from tests.waiting import wait_until

    (tmp_path / "forker.py").write_text(FORKER)
    pid_file = tmp_path / "child.pid"
    job = Job(Spec("forker", "REF", capital=1000.0, plugin_dirs=(tmp_path,),
                   params={"pid_file": str(pid_file)}), (ref_bars.slice(0, 50), 0), tmp_path,
              False)
    [r] = run_isolated(job_fn, [job], job_death)
    assert r["stopped"].startswith("the plugin process exited with code 1")
    child = int(pid_file.read_text())
    # Killed with the run's process group; the kill lands a moment after the run ends.
    wait_until(lambda: _gone(child), what=f"the plugin's child {child} ended with its run")
