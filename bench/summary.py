"""Collect the BENCH_RESULT lines of a ``make bench`` run into one table.

    .venv/bin/python bench/summary.py RESULTS_FILE_OR_LOG [...]

Reads JSON records one a line (a file written through ``BENCH_RESULTS``) or any log holding
``BENCH_RESULT {...}`` lines (bench_backtest.py may print its own floors that way), and prints
one row per benchmark figure and CPU set. Exit status 0; the table says what missed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def records(paths: list[str]) -> list[dict]:
    out: list[dict] = []
    seen: set[str] = set()
    for p in paths:
        for line in Path(p).read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.strip()
            if line.startswith("BENCH_RESULT "):
                line = line[len("BENCH_RESULT "):]
            if not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(rec, dict) or "work" not in rec or line in seen:
                continue
            seen.add(line)
            out.append(rec)
    return out


def table(recs: list[dict]) -> str:
    head = ("bench", "work", "cpus", "value", "floor", "ratio", "target", "")
    rows = [head]
    for r in recs:
        better = r.get("better", "lower")
        tgt = r.get("target")
        sign = "<=" if better == "lower" else ">="
        met = r.get("met")
        rows.append((
            str(r.get("bench", "?")), str(r["work"]), "1 core" if str(r.get("cpus")) == "0"
            else "all",
            f"{r.get('value', 0):,.4g} {r.get('unit', '')}",
            f"{r.get('floor', 0):,.4g} {r.get('unit', '')}",
            f"{r.get('ratio', 0):.2f}x",
            "report" if tgt is None else f"{sign} {tgt:g}x",
            "" if met is None else ("ok" if met else "MISSED"),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    missed = sum(1 for r in recs if r.get("met") is False)
    lines.append(f"{len(recs)} figures, {missed} missed their target")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    recs = records(argv)
    print(table(recs) if recs else "no BENCH_RESULT lines found")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
