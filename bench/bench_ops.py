"""How long the operations take on a data folder of a given size.

Builds a market DB of ``--tickers`` x ``--days`` regular-session minute bars (one year of five
tickers is ~490,000 bars) and a system DB with ``--fills`` transactions, then times:
- ``autotrader backup`` (SQLite's online backup API + manifest, folder and .tar.gz);
- ``PRAGMA integrity_check`` (what ``doctor`` runs) against ``quick_check`` (``doctor --quick``);
- checking a backup (``restore --check``: checksums + integrity of the copies).
On a Pi, SD-card I/O makes these several times slower; the daily backup timer runs at night.

    .venv/bin/python bench/bench_ops.py [--tickers 5] [--days 252] [--fills 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Settings  # noqa: E402
from app.ops.backup import create_backup  # noqa: E402
from app.ops.dbcheck import inspect_db, migration_sets  # noqa: E402
from app.ops.restore import check_backup  # noqa: E402
from db.calendar import nyse  # noqa: E402
from db.market import MarketStore  # noqa: E402
from db.system import SystemStore  # noqa: E402

T = TypeVar("T")


def build(data: Path, tickers: int, days: int, fills: int) -> int:
    market = MarketStore(data / "market.db", nyse())
    start = 1704205800  # 2024-01-02 14:30 UTC, the open; one 390-minute block a day
    rows = []
    n = 0
    for t in range(tickers):
        sym = f"T{t}"
        for d in range(days):
            base = start + d * 86_400
            rows.extend((sym, base + 60 * m, 100.0, 100.5, 99.5, 100.1, 1000) for m in range(390))
            if len(rows) > 200_000:
                n += market.insert_rows(rows, filter_session=False)
                rows.clear()
    n += market.insert_rows(rows, filter_session=False)
    market.close()
    system = SystemStore(data / "system.db")
    algo = system.add_algorithm("sma_crossover", "T0", 1e6)
    with system.atomic():
        for i in range(fills):
            system.add_transaction(algo, "T0", "buy" if i % 2 == 0 else "sell", 1, 100.0,
                                   "2024-01-02T15:00:00Z", fill_id=f"f{i}")
    system.close()
    return n


def timed(label: str, fn: Callable[[], T]) -> T:
    t0 = time.perf_counter()
    out = fn()
    print(f"  {label:<42} {time.perf_counter() - t0:7.2f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickers", type=int, default=5)
    ap.add_argument("--days", type=int, default=252)
    ap.add_argument("--fills", type=int, default=20_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        bars = timed("building the DBs", lambda: build(data, a.tickers, a.days, a.fills))
        size = sum(p.stat().st_size for p in data.glob("*.db*")) / 1e6
        print(f"  data folder: {bars:,} bars, {a.fills:,} transactions, {size:.0f} MB")
        s = Settings(data_dir=str(data))
        sets = migration_sets()
        timed("integrity_check of market.db (doctor)",
              lambda: inspect_db(data / "market.db", sets["market.db"]))
        timed("quick_check of market.db (doctor --quick)",
              lambda: inspect_db(data / "market.db", sets["market.db"], quick=True))
        res = timed("backup to a folder", lambda: create_backup(s, Path(tmp) / "bk"))
        timed("backup to a .tar.gz", lambda: create_backup(s, Path(tmp) / "bk", archive=True))
        timed("restore --check of the folder backup", lambda: check_backup(res.path))


if __name__ == "__main__":
    main()
