"""Open orders are settled with one list call to Alpaca, not one request per order."""

from __future__ import annotations

from datetime import timedelta

from app.engine.orders import algo_order_id
from tests.engine.alpaca.test_engine_integration import make_engine  # noqa: F401 - fixture
from tests.fakes.emulator_fixtures import SESSION_NOW
from tests.waiting import wait_until


def order_reads(emulator) -> tuple[int, int]:
    lists = sum(1 for m, p in emulator.requests if m == "GET" and p == "/v2/orders")
    singles = sum(1 for m, p in emulator.requests
                  if m == "GET" and (p.startswith("/v2/orders/") or p.endswith("client_order_id")))
    return lists, singles


def test_open_orders_are_polled_with_one_list_call(make_engine, emulator, system_store,  # noqa: F811
                                                   clock) -> None:
    emulator.faults.fill_mode = "hold"  # accepted, not filled: they stay open
    engine = make_engine()
    engine.start()
    algos = [engine.create_algorithm("scripted", t, 10_000.0, {"action": "buy", "shares": 2})
             for t in ("AAPL", "MSFT", "NVDA")]
    clock.set(SESSION_NOW + timedelta(seconds=2))
    assert engine.run_tick(SESSION_NOW).errors == {}
    cids = [algo_order_id(a, SESSION_NOW, engine.orders.prefix) for a in algos]
    # pending_new when sent, new once routed (the emulator's realism, as Alpaca's docs say).
    assert wait_until(lambda: [system_store.get_order(c)["status"] for c in cids] == ["new"] * 3)

    # One order fills (the trade stream may or may not have told the engine yet); the others
    # stay open.
    emulator.fill_order(cids[0], price=100.0)
    lists0, singles0 = order_reads(emulator)
    updated, txs = engine.orders.poll_open(None)
    lists, singles = order_reads(emulator)
    assert lists - lists0 == 1          # one list call answers the open ones
    assert singles - singles0 <= 1      # only the order that left the open list is asked
    assert set(updated) <= {cids[0]}
    assert [(t["type"], t["shares"], t["price"])
            for t in system_store.transactions(algos[0])] == [("buy", 2, 100.0)]  # once
    assert [system_store.get_order(c)["status"] for c in cids] == ["filled", "new", "new"]
    engine.close()
