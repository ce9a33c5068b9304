"""Broker updates to transactions: cumulative fills, replays, stale and odd updates."""

from __future__ import annotations

import pytest

from app.broker.base import OrderUpdate
from app.broker.simulated import SimulatedBroker
from app.engine.orders import OrderBook
from tests.engine.conftest import T0


@pytest.fixture
def book(system_store, market_store, clock, calendar):
    broker = SimulatedBroker(system_store, market_store, clock, calendar=calendar)
    algo = system_store.add_algorithm("scripted", "AAA", 10_000)
    system_store.insert_order_row("at-1-x", algo, "AAA", "buy", 10, "2024-06-04T14:00:00Z")
    return OrderBook(system_store, broker, clock), algo


def upd(status, qty, avg):
    return OrderUpdate("at-1-x", status, "AAA", "buy", 10, filled_qty=qty, filled_avg_price=avg,
                       broker_order_id="b1", timestamp=T0)


def test_cumulative_updates_become_fills_once(book, system_store):
    ob, algo = book
    assert [(t["shares"], t["price"]) for t in ob.apply_update(upd("partially_filled", 3, 10.0))] \
        == [(3, 10.0)]
    assert ob.apply_update(upd("partially_filled", 3, 10.0)) == []       # a replay
    [second] = ob.apply_update(upd("filled", 10, 10.7))                  # 7 more at 11.0
    assert (second["shares"], second["price"]) == (7, pytest.approx(11.0))
    assert ob.apply_update(upd("partially_filled", 3, 10.0)) == []       # stale, after the fact
    row = system_store.get_order("at-1-x")
    assert (row["status"], row["filled_qty"], row["filled_avg_price"]) == ("filled", 10, 10.7)
    assert [t["shares"] for t in system_store.transactions(algo)] == [3, 7]


def test_a_quantity_without_a_price_waits_for_one(book, system_store):
    ob, algo = book
    assert ob.apply_update(upd("partially_filled", 4, None)) == []
    assert system_store.get_order("at-1-x")["filled_qty"] == 0
    [t] = ob.apply_update(upd("partially_filled", 4, 9.5))
    assert (t["shares"], t["price"]) == (4, 9.5)


def test_updates_for_orders_that_are_not_ours_are_ignored(book, system_store):
    ob, _ = book
    other = OrderUpdate("someone-else", "filled", "AAA", "buy", 5, filled_qty=5,
                        filled_avg_price=1.0)
    assert ob.apply_update(other) == []
    assert system_store.all_transactions() == []


def test_a_new_fill_is_the_same_record_as_its_row_read_back(book, system_store):
    """The order book's Transaction (what the ledgers and listeners get) has every key of
    the typed record and equals the DB row, so the money shown and the money stored agree;
    order rows read back carry every key of OrderRow."""
    from db.system import OrderRow, Transaction

    ob, algo = book
    [t] = ob.apply_update(upd("filled", 10, 10.0))
    assert set(t) == set(Transaction.__annotations__)
    [stored] = system_store.all_transactions()
    assert stored == t
    # The plugins' view (db.transactions) is the same minus the fill id.
    [seed] = system_store.transactions(algo)
    assert seed == {k: v for k, v in t.items() if k != "fill_id"}
    assert set(system_store.get_order("at-1-x")) == set(OrderRow.__annotations__)
