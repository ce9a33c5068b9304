"""Child process of test_storage_faults.py's kill -9 test: on real SQLite files in the folder
argv[1] it creates three algorithms, then (when the parent says ``go`` on stdin, another
process holding the system DB's write lock by then) stops all of them, resumes the second and
deletes the third: each row is held back and journaled. It prints ``held`` and waits to be
killed with SIGKILL.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.clock import ManualClock  # noqa: E402
from db.calendar import nyse  # noqa: E402
from tests.engine._kill9_child import build  # noqa: E402
from tests.engine.conftest import T0, put_bars  # noqa: E402


def main(folder: Path) -> None:
    clock = ManualClock(T0)
    engine, system, market = build(folder, clock)
    put_bars(market, "AAA", 100.0, datetime(2024, 6, 3, tzinfo=UTC), T0, nyse())
    engine.start()
    ids = [engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 1})
           for _ in range(3)]
    print("IDS " + " ".join(map(str, ids)), flush=True)
    assert sys.stdin.readline().strip() == "go"
    system.conn.execute("PRAGMA busy_timeout = 300")  # this thread's wait, shortened
    engine.stop_all()
    engine.resume_algorithm(ids[1])
    engine.delete_algorithm(ids[2])
    print("held " + " ".join(engine.algorithm_view(a).status for a in ids[:2]), flush=True)
    sys.stdin.readline()  # killed here
    print("NOT KILLED", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
