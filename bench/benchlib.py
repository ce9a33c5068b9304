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
from typing import Any


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


_HEAP_LIBS: Any = None


def heap_stats() -> dict[str, float]:
    """Where this process's RSS is, in MB: malloc's bytes in use and free inside its heaps
    (glibc's mallinfo2, all arenas), SQLite's own (``sqlite3_memory_used``), and the RSS split
    into anonymous, file-backed and shared pages (/proc/self/status). For the memory bench and
    the window soak: an RSS drift told apart from free space malloc keeps."""
    import ctypes
    import sqlite3  # noqa: F401  (loads the libsqlite3 the app uses)

    global _HEAP_LIBS
    if _HEAP_LIBS is None:
        class MallInfo2(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                "uordblks", "fordblks", "keepcost")]
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = MallInfo2
        lite = ctypes.CDLL("libsqlite3.so.0")
        lite.sqlite3_memory_used.restype = ctypes.c_int64
        _HEAP_LIBS = (libc, lite)
    libc, lite = _HEAP_LIBS
    mi = libc.mallinfo2()
    out = {"malloc_used": (mi.uordblks + mi.hblkhd) / 2**20, "malloc_free": mi.fordblks / 2**20,
           "sqlite": lite.sqlite3_memory_used() / 2**20}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssFile", "RssShmem"):
                out[k.lower()] = int(v.split()[0]) / 1024
    return out
