"""Guard state survives kill -9 in the middle of a tick (issue 10).

A real child process (tests/engine/_kill9_child.py) trades on real SQLite files with the real
simulated broker and is SIGKILLed inside a tick, after that tick's intents and guard baselines
were written and before its order left (the ``before_submit`` test seam). A new engine on the
same files must find: the day's baselines (value at the day's start, peak, orders counted),
the broker refusals in a row with their cool-down, and the pause of a ticker whose position
differs from the broker's, all as they were; and act on them (the cooled-down algorithm sends
nothing, the paused one stays paused, the unsent intent is cancelled, never sent late).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.engine._kill9_child import ROOT, build
from tests.engine.conftest import T0

pytestmark = pytest.mark.slow


def run_child_until_paused(folder: Path) -> tuple[int, int, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOTRADER_")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "engine" / "_kill9_child.py"),
                             str(folder)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ids = None
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            if line.startswith("IDS "):
                ids = tuple(int(x) for x in line.split()[1:])
                break
        assert ids is not None, proc.stderr.read()
        for line in proc.stderr:
            if "PAUSE before_submit" in line:
                break
        else:
            raise AssertionError("the child never reached the send")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    return ids  # type: ignore[return-value]


def test_guard_baselines_refusals_and_pauses_survive_kill_9_mid_tick(tmp_path: Path):
    from app.clock import ManualClock

    folder = tmp_path / "data"
    folder.mkdir()
    a, b, c = run_child_until_paused(folder)

    clock = ManualClock(T0 + timedelta(minutes=3, seconds=2))
    engine, system, _ = build(folder, clock)
    try:
        g = engine.guards
        assert g.day == "2024-06-04"
        assert g.day_start[c] == pytest.approx(5000.0)  # created at $5,000 today
        assert g.peak[c] == pytest.approx(4500.0 + 5 * 110.0)  # the killed tick's roll
        assert g.orders_today[c] == 2  # minute 1, and the killed minute's intent
        assert g.orders_today[a] == 1
        sa, sb = engine._algos[a], engine._algos[b]
        assert sa.rejections == 1 and sa.cooldown_until == T0 + timedelta(minutes=10)
        assert sb.paused == "broker holds 7 BBB, the algorithms 0"
        assert engine.algorithm_view(b).status == "paused"

        report = engine.start()  # the killed minute's intent was never sent: cancelled
        killed = [r for r in system.orders_for(c) if r["minute"].startswith("2024-06-04T14:02")]
        assert [r["status"] for r in killed] == ["canceled"]
        assert report.orders_updated == [killed[0]["client_order_id"]]
        r = engine.run_tick(T0 + timedelta(minutes=3))
        assert "cool-down" in r.errors[a]  # still cooling down after the restart
        assert engine.algorithm_view(b).status == "paused"
        assert engine.algorithm_view(c).position == 10  # minute 1 and minute 3, not 2
        assert [o["client_order_id"] for o in system.orders_for(a)
                if o["status"] not in ("rejected", "canceled")] == []
    finally:
        engine.close()
        system.close()
