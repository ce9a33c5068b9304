"""The simulated broker: documented fill price, idempotent ids, persistence, refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.broker.base import BrokerError, OrderRequest, UnknownTickerError
from app.broker.simulated import SimulatedBroker, next_open
from tests.engine.conftest import T0, put_bars


@pytest.fixture
def priced(market_store, calendar):
    put_bars(market_store, "AAA", 50.0, T0 - timedelta(minutes=30), T0, calendar)
    put_bars(market_store, "AAA", 51.0, T0, T0 + timedelta(minutes=1), calendar)
    return market_store


def make(system_store, market, clock, calendar, **kw):
    return SimulatedBroker(system_store, market, clock, calendar=calendar, **kw)


def test_fill_price_is_last_close_plus_slippage(system_store, priced, clock, calendar):
    b = make(system_store, priced, clock, calendar, starting_cash=10_000, slippage_bps=20)
    u = b.submit_order(OrderRequest("o1", "AAA", "buy", 10))
    # The bar starting at T0 is not complete at T0: the last close is 50.
    assert u.status == "filled" and u.filled_avg_price == pytest.approx(50.1)
    s = b.submit_order(OrderRequest("o2", "AAA", "sell", 4))
    assert s.filled_avg_price == pytest.approx(49.9)
    assert b.get_account().cash == pytest.approx(10_000 - 501 + 4 * 49.9)
    assert b.get_positions() == {"AAA": 6.0}


def test_next_open_rule_for_backtests(system_store, priced, clock, calendar):
    b = make(system_store, priced, clock, calendar, price_rule=next_open(priced),
             slippage_bps=0)
    assert b.submit_order(OrderRequest("o1", "AAA", "buy", 1)).filled_avg_price == 51.0


def test_same_client_order_id_is_the_same_order(system_store, priced, clock, calendar):
    b = make(system_store, priced, clock, calendar)
    first = b.submit_order(OrderRequest("dup", "AAA", "buy", 3))
    again = b.submit_order(OrderRequest("dup", "AAA", "buy", 3))
    assert again.broker_order_id == first.broker_order_id
    assert b.get_positions() == {"AAA": 3.0}


def test_state_survives_a_new_broker_object(system_store, priced, clock, calendar):
    make(system_store, priced, clock, calendar, starting_cash=5000).submit_order(
        OrderRequest("p1", "AAA", "buy", 2))
    b2 = make(system_store, priced, clock, calendar, starting_cash=999_999)
    assert b2.get_positions() == {"AAA": 2.0}
    assert b2.get_account().cash == pytest.approx(5000 - 2 * 50.005, abs=0.01)
    assert b2.get_order("p1").filled_qty == 2
    assert b2.get_order("never") is None


def test_refusals(system_store, priced, clock, calendar):
    b = make(system_store, priced, clock, calendar, starting_cash=100, symbols={"AAA"})
    assert b.submit_order(OrderRequest("r1", "AAA", "buy", 3)).status == "rejected"
    r = b.submit_order(OrderRequest("r2", "AAA", "sell", 1))
    assert r.status == "rejected" and "no short" in r.reason
    with pytest.raises(UnknownTickerError):
        b.get_ticker("ZZZ")
    with pytest.raises(BrokerError):
        b.submit_order(OrderRequest("r3", "AAA", "buy", 0))
    with pytest.raises(BrokerError):
        b.submit_order(OrderRequest("x" * 49, "AAA", "buy", 1))
    assert b.get_account().cash == 100


def test_known_symbols_with_their_names(system_store, priced, clock, calendar):
    """The demo's broker (issue 12): a mapping of symbols to names; a symbol outside it is
    unknown, with the reason; one of the demo's market is named from its table."""
    b = make(system_store, priced, clock, calendar, symbols={"AAA": "Triple A Corp",
                                                             "AMZN": "", "OLDT": ""})
    assert b.get_ticker("AAA").name == "Triple A Corp"
    assert b.get_ticker("AMZN").name == "Amazon.com"
    assert b.get_ticker("OLDT").name == "OLDT (simulated)"
    with pytest.raises(UnknownTickerError, match="ZZZZZ is not listed in the simulated market"):
        b.get_ticker("ZZZZZ")
    with pytest.raises(UnknownTickerError):
        b.submit_order(OrderRequest("u1", "ZZZZZ", "buy", 1))


def test_shares_held_stay_known(system_store, priced, clock, calendar):
    """Shares bought while a symbol was known (an older demo) can still be sold."""
    make(system_store, priced, clock, calendar).submit_order(OrderRequest("h1", "AAA", "buy", 2))
    b = make(system_store, priced, clock, calendar, symbols={"BBB"})
    assert b.get_ticker("AAA").symbol == "AAA"
    assert b.submit_order(OrderRequest("h2", "AAA", "sell", 2)).status == "filled"
    with pytest.raises(UnknownTickerError):
        b.get_ticker("CCC")


def test_partial_fills_finish_a_minute_later(system_store, priced, clock, calendar):
    b = make(system_store, priced, clock, calendar, partial_fill_ratio=0.3, slippage_bps=0)
    heard = []
    b.add_order_listener(heard.append)
    u = b.submit_order(OrderRequest("pf", "AAA", "buy", 10))
    assert (u.status, u.filled_qty) == ("partially_filled", 3)
    assert b.get_order("pf").filled_qty == 3  # same minute: nothing more
    clock.advance(minutes=1)
    done = b.get_order("pf")
    assert (done.status, done.filled_qty) == ("filled", 10)
    assert done.filled_avg_price == pytest.approx((3 * 50 + 7 * 51) / 10)
    assert [h.filled_qty for h in heard] == [3, 10]
    b.cancel_order("pf")  # canceling a filled order changes nothing
    assert b.get_order("pf").status == "filled"


def test_a_raising_order_listener_is_logged_and_the_next_still_hears(
        system_store, priced, clock, calendar, caplog):
    b = make(system_store, priced, clock, calendar, partial_fill_ratio=0.5, slippage_bps=0)
    heard = []

    def broken(update):
        raise RuntimeError("listener bug")

    b.add_order_listener(broken)
    b.add_order_listener(heard.append)
    u = b.submit_order(OrderRequest("l1", "AAA", "buy", 10))
    assert (u.status, u.filled_qty) == ("partially_filled", 5)  # the caller never sees the bug
    clock.advance(minutes=1)
    assert b.get_order("l1").status == "filled"
    assert [h.filled_qty for h in heard] == [5, 10]
    failed = [r for r in caplog.records if "order listener" in r.getMessage()]
    assert len(failed) == 2 and all("broken" in r.getMessage() for r in failed)
