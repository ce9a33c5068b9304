"""Several algorithms on one ticker deciding opposite sides in the same minute."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.engine.conftest import T0

M1 = T0 + timedelta(minutes=1)


def positions_by_algo(engine):
    return {v.id: v.position for v in engine.algorithm_views()}


def test_opposite_orders_are_netted_into_one_broker_order(make_engine, system_store, clock):
    engine = make_engine(slippage_bps=10)
    buyer = engine.create_algorithm("scripted", "AAA", 10_000, {"action": "buy", "shares": 10})
    seesaw = engine.create_algorithm("seesaw", "AAA", 10_000, {"shares": 4})
    clock.set(T0 + timedelta(seconds=2))
    r1 = engine.run_tick(T0)  # both buy: same side, two ordinary orders
    assert sorted(f["shares"] for f in r1.fills) == [4, 10]

    clock.set(M1 + timedelta(seconds=2))
    r2 = engine.run_tick(M1)  # buyer buys 10, seesaw sells 4: net buy 6
    assert r2.errors == {}
    sim = system_store.conn.execute(
        "SELECT client_order_id, side, qty FROM sim_orders ORDER BY rowid").fetchall()
    assert sim[-1] == ("at-net-AAA-202406041401", "buy", 6)
    assert len(sim) == 3  # one broker order for the net, none per algorithm
    by_algo = {}
    for f in r2.fills:
        by_algo.setdefault(f["algo_id"], []).append((f["type"], f["shares"], f["price"]))
    # The matched 4 shares cross at the last price (100); the other 6 fill at the market.
    assert by_algo[seesaw] == [("sell", 4, 100.0)]
    assert sorted(by_algo[buyer]) == [("buy", 4, 100.0), ("buy", 6, pytest.approx(100.1))]
    assert positions_by_algo(engine) == {buyer: 20, seesaw: 0}
    assert engine.broker.get_positions() == {"AAA": 20}
    own = {o["client_order_id"]: o for o in system_store.orders_for(buyer)}
    assert own[f"at-{buyer}-202406041401"]["status"] == "filled"
    assert own[f"at-{buyer}-202406041401"]["filled_qty"] == 10


def test_fully_matched_orders_never_reach_the_broker(make_engine, system_store, clock):
    engine = make_engine()
    seesaw = engine.create_algorithm("seesaw", "AAA", 10_000, {"shares": 4})
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)
    buyer = engine.create_algorithm("scripted", "AAA", 10_000, {"action": "buy", "shares": 4})
    clock.set(M1 + timedelta(seconds=2))
    r = engine.run_tick(M1)
    assert sorted((f["algo_id"], f["type"], f["shares"]) for f in r.fills) == sorted(
        [(seesaw, "sell", 4), (buyer, "buy", 4)])
    assert system_store.conn.execute("SELECT count(*) FROM sim_orders").fetchone()[0] == 1
    assert positions_by_algo(engine) == {seesaw: 0, buyer: 4}
    assert engine.broker.get_positions() == {"AAA": 4}
    assert system_store.open_orders() == []


def test_net_order_partial_fills_are_shared_out_in_algorithm_order(make_engine, system_store,
                                                                   clock):
    engine = make_engine(partial=0.5)
    seesaw = engine.create_algorithm("seesaw", "AAA", 10_000, {"shares": 2})
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)
    engine.broker.fill_pending()  # seesaw's first buy of 2 was half filled
    assert positions_by_algo(engine) == {seesaw: 2}
    a = engine.create_algorithm("scripted", "AAA", 10_000, {"action": "buy", "shares": 5})
    b = engine.create_algorithm("scripted", "AAA", 10_000, {"action": "buy", "shares": 5})
    clock.set(M1 + timedelta(seconds=2))
    engine.run_tick(M1)  # buys 10, sells 2: 2 crossed (to a), net buy 8, half of it now
    assert positions_by_algo(engine) == {seesaw: 0, a: 5, b: 1}
    engine.broker.fill_pending()
    assert positions_by_algo(engine) == {seesaw: 0, a: 5, b: 5}
    assert engine.broker.get_positions() == {"AAA": 10}
    assert system_store.open_orders() == []
    fill_ids = [t["fill_id"] for t in system_store.all_transactions()]
    assert len(fill_ids) == len(set(fill_ids))


def test_stop_keeps_or_liquidates_the_position_and_history(make_engine, system_store, clock):
    engine = make_engine()
    keep = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 3})
    sell = engine.create_algorithm("scripted", "BBB", 5000, {"action": "buy", "shares": 7})
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)
    engine.stop_algorithm(keep)
    engine.stop_algorithm(sell, liquidate=True)
    views = {v.id: v for v in engine.algorithm_views()}
    assert views[keep].status == "stopped" and views[keep].position == 3
    assert views[sell].status == "stopped" and views[sell].position == 0
    assert views[sell].cash == pytest.approx(5000)
    assert engine.broker.get_positions() == {"AAA": 3}
    assert [t["type"] for t in system_store.transactions(sell)] == ["buy", "sell"]
    clock.set(M1 + timedelta(seconds=2))
    assert engine.run_tick(M1).decisions == []  # stopped algorithms do not run
    engine.resume_algorithm(keep)
    clock.set(M1 + timedelta(minutes=1, seconds=2))
    assert engine.run_tick(M1 + timedelta(minutes=1)).fills[0]["algo_id"] == keep
    engine.delete_algorithm(sell)
    assert sell not in {v.id for v in engine.algorithm_views()}
    assert system_store.get_algorithm(sell)["status"] == "deleted"
    assert len(system_store.transactions(sell)) == 2  # history kept


def test_stop_all_with_liquidate_is_the_panic_button(make_engine, system_store, clock):
    engine = make_engine()
    ids = [engine.create_algorithm("scripted", t, 5000, {"action": "buy", "shares": 4})
           for t in ("AAA", "BBB", "AAA")]
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)
    assert engine.broker.get_positions() == {"AAA": 8, "BBB": 4}
    engine.stop_all(liquidate=True)
    assert all(v.status == "stopped" and v.position == 0 for v in engine.algorithm_views())
    assert engine.broker.get_positions() == {}
    assert engine.free_capital() == pytest.approx(100_000)
    assert {o["client_order_id"].endswith("-L") for o in system_store.orders_for(ids[0])} == {
        False, True}


def test_stopping_cancels_what_the_algorithm_still_has_working(make_engine, system_store,
                                                                clock):
    engine = make_engine(partial=0.5)
    a = engine.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 10})
    clock.set(T0 + timedelta(seconds=2))
    engine.run_tick(T0)
    assert engine.algorithm_view(a).position == 5
    engine.stop_algorithm(a)
    [order] = system_store.orders_for(a)
    assert order["status"] == "canceled" and order["filled_qty"] == 5
    assert engine.broker.fill_pending() == []  # nothing left working at the broker
    clock.set(M1 + timedelta(seconds=2))
    engine.run_tick(M1)
    assert engine.algorithm_view(a).position == 5
    assert engine.broker.get_positions() == {"AAA": 5}
