"""The simulated broker's order rows (db/simbroker.py) on a real SQLite file."""

from __future__ import annotations

from db.simbroker import SimBrokerStore


def _order(store: SimBrokerStore, coid: str, created_ts: int, status: str, filled: int) -> None:
    row = {"client_order_id": coid, "broker_order_id": "b-" + coid, "ticker": "AAPL",
           "side": "buy", "qty": 10, "status": "new", "created_ts": created_ts}
    store.insert_order(row, "2024-06-04T13:30:00Z")
    store.save_order({"client_order_id": coid, "status": status, "filled_qty": filled,
                      "filled_avg_price": 100.0 if filled else None, "reason": ""},
                     "2024-06-04T13:31:00Z")


def test_filled_since_reads_only_the_session_s_fills(system_store) -> None:
    store = SimBrokerStore(system_store)
    close = 1_717_617_600
    _order(store, "old", close - 60, "filled", 10)  # before the close: not read
    _order(store, "full", close, "filled", 10)
    _order(store, "part", close + 60, "partially_filled", 4)
    _order(store, "cut", close + 120, "canceled", 3)  # cancelled after a part filled
    _order(store, "none", close + 180, "canceled", 0)  # cancelled unfilled: no shares moved
    _order(store, "open", close + 240, "new", 0)
    _order(store, "refused", close + 300, "rejected", 0)
    got = store.filled_since(close)
    assert [(o["client_order_id"], o["filled_qty"]) for o in got] == \
        [("full", 10), ("part", 4), ("cut", 3)]
