"""Restart: running algorithms resume from the DB, in-flight orders are reconciled first.

The crash states are produced by running the engine's own steps up to the crash point (the
intent written; the broker's fill committed) with a fresh broker object standing in for the
process that died before recording anything further.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.broker.base import OrderRequest
from app.broker.simulated import SimulatedBroker
from app.engine.decisions import Decision
from app.engine.facade import LAST_TICK_KEY
from app.engine.orders import NOT_SENT_REASON, Wanted, algo_order_id
from db.timeutil import iso_z
from tests.engine.conftest import T0


def crash_after_intent(engine, algo_id, ticker, shares):
    """The tick's first step, then the process dies."""
    planned, _, _ = engine.orders.write_intents(
        [Wanted(algo_id, ticker, Decision("buy", shares))], T0, {ticker: 100.0},
        mark=(LAST_TICK_KEY, iso_z(T0)))
    return planned[0]


def test_an_intent_never_sent_is_canceled_not_resent(make_engine, system_store, clock):
    e1 = make_engine()
    a = e1.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 5})
    order = crash_after_intent(e1, a, "AAA", 5)
    e1.close()

    clock.set(T0 + timedelta(seconds=30))
    e2 = make_engine(start=False)
    report = e2.start()
    row = system_store.get_order(order.client_order_id)
    assert row["status"] == "canceled" and row["reason"] == NOT_SENT_REASON
    assert report.orders_updated == [order.client_order_id] and report.clean
    assert system_store.transactions(a) == []
    assert e2.broker.get_order(order.client_order_id) is None
    # The minute is over for this algorithm: running it again places nothing.
    assert e2.run_tick(T0).decisions == []
    # The next minute trades normally.
    clock.set(T0 + timedelta(minutes=1, seconds=2))
    r = e2.run_tick(T0 + timedelta(minutes=1))
    assert [f["algo_id"] for f in r.fills] == [a]


def test_a_fill_the_engine_did_not_record_is_recorded_once(make_engine, system_store,
                                                           market_store, clock, calendar):
    e1 = make_engine()
    a = e1.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 5})
    order = crash_after_intent(e1, a, "AAA", 5)
    # The broker receives and fills the order, then the engine's process dies.
    other_process = SimulatedBroker(system_store, market_store, clock, calendar=calendar)
    other_process.submit_order(OrderRequest(order.client_order_id, "AAA", "buy", 5))
    e1.close()
    assert system_store.transactions(a) == []

    for _ in range(2):  # two restarts: the fill is recorded once
        e = make_engine()
        row = system_store.get_order(algo_order_id(a, T0))
        assert row["status"] == "filled" and row["filled_qty"] == 5
        assert [(t["type"], t["shares"]) for t in system_store.transactions(a)] == [("buy", 5)]
        assert e.algorithm_view(a).position == 5
        assert {k: int(v) for k, v in e.broker.get_positions().items()} == \
            system_store.positions_by_ticker() == {"AAA": 5}
        e.close()


def test_running_algorithms_resume_and_stopped_ones_stay_stopped(make_engine, system_store,
                                                                 clock):
    e1 = make_engine()
    run = e1.create_algorithm("scripted", "AAA", 5000, {"action": "buy", "shares": 1})
    stop = e1.create_algorithm("scripted", "BBB", 5000, {"action": "buy", "shares": 1})
    clock.set(T0 + timedelta(seconds=2))
    e1.run_tick(T0)
    e1.stop_algorithm(stop)
    e1.close()

    e2 = make_engine()
    views = {v.id: v for v in e2.algorithm_views()}
    assert views[run].status == "running" and views[run].position == 1
    assert views[stop].status == "stopped" and views[stop].position == 1
    # A stopped algorithm still holding shares keeps its cash out of the free money too.
    assert e2.free_capital() == pytest.approx(
        e2.broker.get_account().cash - views[run].cash - views[stop].cash)
    clock.set(T0 + timedelta(minutes=1, seconds=2))
    r = e2.run_tick(T0 + timedelta(minutes=1))
    assert [f["algo_id"] for f in r.fills] == [run]


def test_an_algorithm_whose_plugin_vanished_is_marked_error(make_engine, system_store, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "temp.py").write_text(
        "class Algorithm:\n    def __init__(self, t, c):\n        pass\n"
        "    def run(self, t, a):\n        return ('hold', 0)\n")
    e1 = make_engine(plugin_dirs=[plugins])
    a = e1.create_algorithm("temp", "AAA", 1000)
    e1.close()
    (plugins / "temp.py").unlink()
    e2 = make_engine(plugin_dirs=[plugins])
    v = e2.algorithm_view(a)
    assert v.status == "error" and "not found" in v.error
    r = e2.run_tick(T0)
    assert r.decisions == []


def test_a_netted_order_in_flight_at_a_crash(make_engine, system_store, clock):
    e1 = make_engine()
    seller = e1.create_algorithm("seesaw", "AAA", 5000, {"shares": 4})
    buyer = e1.create_algorithm("scripted", "AAA", 5000)
    clock.set(T0 + timedelta(seconds=2))
    e1.run_tick(T0)  # seller holds 4
    m1 = T0 + timedelta(minutes=1)
    planned, crossed, _ = e1.orders.write_intents(
        [Wanted(buyer, "AAA", Decision("buy", 10)), Wanted(seller, "AAA", Decision("sell", 4))],
        m1, {"AAA": 100.0}, mark=(LAST_TICK_KEY, iso_z(m1)))
    assert [p.client_order_id for p in planned] == ["at-net-AAA-202406041401"]
    assert sorted(t["shares"] for t in crossed) == [4, 4]
    e1.close()  # killed before sending the net order

    e2 = make_engine()
    net = system_store.get_order("at-net-AAA-202406041401")
    assert net["status"] == "canceled"
    mine = system_store.get_order(algo_order_id(buyer, m1))
    assert mine["status"] == "canceled" and mine["filled_qty"] == 4  # the crossed part
    views = {v.id: v.position for v in e2.algorithm_views()}
    assert views == {seller: 0, buyer: 4}
    assert {k: int(v) for k, v in e2.broker.get_positions().items()} == \
        system_store.positions_by_ticker() == {"AAA": 4}
