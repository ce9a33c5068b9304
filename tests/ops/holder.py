"""A separate process that keeps AutoTrader's DBs open, as a running app does.

``python -m tests.ops.holder DATA_DIR`` opens both stores through the real ``SystemStore`` and
``MarketStore``, prints ``ready`` and keeps them open until its stdin closes. With ``--write``
it also keeps writing, each step one transaction holding an order and its fill, so any
consistent snapshot has as many transactions as orders.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from db.market import MarketStore
from db.system import SystemStore


def main() -> int:
    data = Path(sys.argv[1])
    write = "--write" in sys.argv
    system = SystemStore(data / "system.db")
    market = MarketStore(data / "market.db")
    algo = system.add_algorithm("sma_crossover", "AAPL", 10_000.0)
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            with system.atomic():
                oid = system.insert_order(f"w-{i}", algo, "AAPL", "buy", 1, f"2024-01-02T{i}")
                system.add_transaction(algo, "AAPL", "buy", 1, 100.0 + i % 7, "2024-01-02T15:00:00Z",
                                       order_id=oid, fill_id=f"f-{i}")

    t = threading.Thread(target=writer, daemon=True) if write else None
    if t:
        t.start()
    print("ready", flush=True)
    sys.stdin.read()
    stop.set()
    if t:
        t.join()
    system.close()
    market.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
