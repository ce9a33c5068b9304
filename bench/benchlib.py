"""Shared by the benchmarks: a figure beside its floor measured in the same run.

Every benchmark prints, for each row of issue 15's table, the absolute figure, the floor (the
same work done the plainest way, measured in the same process a moment before or after), the
ratio and the target, and one machine-readable line that ``bench/summary.py`` collects::

    BENCH_RESULT {"bench": "tick", "work": "tick p99, 100 algos", "value": 41.2,
                  "floor": 15.0, "unit": "ms", "ratio": 2.75, "target": 3.0,
                  "better": "lower", "met": true, "cpus": "0,1"}

``better`` says which way the ratio should go: "lower" (time, CPU: ratio = value / floor must
be <= target) or "higher" (rates: ratio = value / floor must be >= target). ``cpus`` is the
set of CPUs the process may run on (``taskset -c 0`` gives "0", the Pi-like figure).
A target of null means "report only".
"""

from __future__ import annotations

import json
import os
import sys


def cpus() -> str:
    try:
        return ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return "?"


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def report(bench: str, work: str, value: float, floor: float, unit: str,
           target: float | None, better: str = "lower", floor_what: str = "",
           file=None) -> dict:
    """Print the human line and the BENCH_RESULT line; return the record."""
    if better not in ("lower", "higher"):
        raise ValueError(better)
    ratio = value / floor if floor else float("inf")
    if target is None:
        met = None
    elif better == "lower":
        met = ratio <= target
    else:
        met = ratio >= target
    rec = {"bench": bench, "work": work, "value": round(value, 4), "floor": round(floor, 4),
           "unit": unit, "ratio": round(ratio, 3), "target": target, "better": better,
           "met": met, "cpus": cpus(), "floor_what": floor_what}
    out = file or sys.stdout
    sign = "<=" if better == "lower" else ">="
    verdict = "report" if met is None else ("met" if met else "MISSED")
    tgt = "-" if target is None else f"{sign} {target:g}x"
    print(f"  {work}: {value:,.4g} {unit} vs floor {floor:,.4g} {unit}"
          f"{f' ({floor_what})' if floor_what else ''} -> {ratio:.2f}x (target {tgt}: {verdict})",
          file=out)
    print("BENCH_RESULT " + json.dumps(rec), file=out, flush=True)
    results_file = os.environ.get("BENCH_RESULTS")
    if results_file:
        with open(results_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
    return rec
