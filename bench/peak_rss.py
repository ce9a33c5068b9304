"""Peak RSS of the window app with 20 algorithms and the dashboard open (issue 15, part 3).

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/peak_rss.py [--seconds 180]

The scenario is bench/bench_memory.py's ``dashboard`` (its script, run as it is): the demo
engine at 60x trading 20 seed-style algorithms, the window offscreen at 800x480, unlocked on
the dashboard with 20 cards updating every second. Beside it, over the same minutes, its floor:
a bare QQuickWidget window with one Text. This script polls both processes every second from
outside: the peak is the kernel's own (``VmHWM`` in /proc/<pid>/status, the high-water mark
of the resident set), and the plugin worker processes the app starts are added up separately
(their proportional set size at each poll; the peak of the sum is reported). Target: the app's peak <= 250 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench.bench_memory import APP, FLOOR, _env  # noqa: E402
from bench.benchlib import report  # noqa: E402

TARGET_MB = 250.0


def status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    """Proportional set size: pages shared with other processes (a forkserver's children
    share most of theirs) counted in part, so a sum over processes does not count them twice."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                kids = [int(x) for x in task.read_text().split()]
            except (OSError, ValueError):
                continue
            out += kids
            todo += kids
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as fd:
        env = _env(d, "dashboard", a.seconds, 5.0, False, False, True, 30.0)
        fenv = _env(fd, "floor", a.seconds, 5.0, False, False, True, 30.0)
        app = subprocess.Popen([sys.executable, "-c", APP], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        floor = subprocess.Popen([sys.executable, "-c", FLOOR], cwd=ROOT, env=fenv,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        hwm = fhwm = workers_peak = 0
        rss: list[tuple[float, int]] = []
        t0 = time.monotonic()
        while app.poll() is None:
            hwm = max(hwm, status_kb(app.pid, "VmHWM"))
            fhwm = max(fhwm, status_kb(floor.pid, "VmHWM"))
            rss.append((time.monotonic() - t0, status_kb(app.pid, "VmRSS")))
            workers_peak = max(workers_peak, sum(pss_kb(p) for p in descendants(app.pid)))
            time.sleep(1.0)
        err = app.stderr.read() if app.stderr else ""
        floor.wait(60)
    if not rss or hwm == 0:
        print(err[-3000:])
        return 1
    mb = hwm / 1024
    late = [v for t, v in rss if t >= a.seconds / 2]
    print(f"dashboard, 20 algorithms, {a.seconds:.0f} s: peak RSS (VmHWM) {mb:.0f} MB; RSS at "
          f"the end {rss[-1][1] / 1024:.0f} MB, over the second half {min(late) / 1024:.0f}-"
          f"{max(late) / 1024:.0f} MB; plugin worker processes together at most (PSS) "
          f"{workers_peak / 1024:.0f} MB; target <= {TARGET_MB:.0f} MB: "
          f"{'met' if mb <= TARGET_MB else 'MISSED'}")
    report("memory", "peak RSS, dashboard with 20 algorithms", mb, fhwm / 1024, "MB", None,
           "lower", "a bare QQuickWidget window with one Text (its peak)")
    return 0 if mb <= TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
