"""AlpacaBroker through the real alpaca-py TradingClient and websocket-client, on the emulator."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from app.broker.alpaca import AlpacaBroker
from app.broker.base import BrokerError, OrderRequest, OrderUpdate, UnknownTickerError, fill_delta
from tests.fakes.alpaca_emulator import AlpacaEmulator
from tests.fakes.emulator_fixtures import make_settings
from tests.waiting import wait_until

FAST = dict(backoff_base=0.01, backoff_max=0.05, rate_limit_wait=0.01, poll_interval=0.2,
            stale_after=0.5, stream_backoff=0.05, stream_auth_retry=0.5)


class Recorder:
    def __init__(self) -> None:
        self.updates: list[OrderUpdate] = []
        self.lock = threading.Lock()

    def __call__(self, u: OrderUpdate) -> None:
        with self.lock:
            self.updates.append(u)

    def for_cid(self, cid: str) -> list[OrderUpdate]:
        with self.lock:
            return [u for u in self.updates if u.client_order_id == cid]

    def final(self, cid: str) -> OrderUpdate | None:
        us = [u for u in self.for_cid(cid) if u.is_terminal]
        return us[-1] if us else None


@pytest.fixture
def broker(settings) -> Iterator[AlpacaBroker]:
    b = AlpacaBroker.from_settings(settings, **FAST)
    assert b.trade_stream is not None and b.trade_stream.wait_connected(5)
    yield b
    b.close()


@pytest.fixture
def rec(broker: AlpacaBroker) -> Recorder:
    r = Recorder()
    broker.add_order_listener(r)
    return r


def order(cid: str, qty: int = 10, side: str = "buy", ticker: str = "AAPL") -> OrderRequest:
    return OrderRequest(client_order_id=cid, ticker=ticker, side=side, qty=qty)  # type: ignore[arg-type]


def test_account_clock_and_mode(broker: AlpacaBroker, emulator: AlpacaEmulator, clock) -> None:
    acct = broker.get_account()
    assert acct.cash == pytest.approx(100_000.0)
    assert acct.equity == pytest.approx(100_000.0)
    assert acct.buying_power == pytest.approx(100_000.0)
    assert not acct.trading_blocked and not acct.account_blocked
    c = broker.get_clock()
    assert c.is_open and c.timestamp == clock.now()
    assert c.next_close.hour == 21  # 16:00 New York in March (EST) is 21:00 UTC
    assert broker.name == "alpaca-paper"


def test_ticker_validation(broker: AlpacaBroker) -> None:
    info = broker.get_ticker("AAPL")
    assert info.tradable and info.active and info.exchange == "NASDAQ"
    with pytest.raises(UnknownTickerError, match="ZZZZ"):
        broker.get_ticker("ZZZZ")
    old = broker.get_ticker("OLDCO")
    assert not old.active and not old.tradable
    assert not broker.get_ticker("NOTRD").tradable


def test_market_order_fills_from_trade_stream(broker, rec, emulator) -> None:
    u = broker.submit_order(order("a1-100", 10))
    # Docs (orders-at-alpaca, Order Lifecycle): routed first (pending_new), then new, filled.
    assert u.status == "pending_new" and u.broker_order_id
    assert wait_until(lambda: rec.final("a1-100") is not None)
    done = rec.final("a1-100")
    assert done.status == "filled" and done.filled_qty == 10
    assert done.filled_avg_price == pytest.approx(float(emulator.find_order("a1-100")["filled_avg_price"]))
    assert emulator.order_posts == 1
    assert broker.get_positions() == {"AAPL": 10.0}
    assert broker.get_order("a1-100").status == "filled"


def test_a_raising_order_listener_is_logged_and_the_next_still_hears(broker, emulator,
                                                                     caplog) -> None:
    def broken(u: OrderUpdate) -> None:
        raise RuntimeError("listener bug")

    broker.add_order_listener(broken)
    rec = Recorder()  # registered after the broken one
    broker.add_order_listener(rec)
    with caplog.at_level(logging.ERROR, logger="app.listeners"):
        broker.submit_order(order("a1-150", 3))
        assert wait_until(lambda: rec.final("a1-150") is not None)
    assert rec.final("a1-150").filled_qty == 3  # the trade stream went on after the bug
    failed = [r.getMessage() for r in caplog.records if "order listener" in r.getMessage()]
    assert failed and all("broken" in m for m in failed)


def test_partial_fills_are_cumulative_and_derive_per_fill(broker, rec, emulator) -> None:
    emulator.faults.fill_mode = "partial"
    emulator.faults.partial_parts = 3
    broker.submit_order(order("a1-200", 10))
    assert wait_until(lambda: rec.final("a1-200") is not None)
    ups = [u for u in rec.for_cid("a1-200") if u.filled_qty > 0]
    assert [u.status for u in ups] == ["partially_filled", "partially_filled", "filled"]
    assert [u.filled_qty for u in ups] == [3, 6, 10]
    prev_q, prev_avg, fills = 0, None, []
    for u in ups:
        d = fill_delta(prev_q, prev_avg, u.filled_qty, u.filled_avg_price)
        fills.append(d)
        prev_q, prev_avg = u.filled_qty, u.filled_avg_price
    base = fills[0].price
    assert [f.qty for f in fills] == [3, 3, 4]
    assert [round(f.price - base, 2) for f in fills] == [0.0, 0.01, 0.02]


def test_rejects_carry_the_brokers_reason(broker, rec, emulator) -> None:
    emulator.faults.reject_next = "account is restricted to liquidation only"
    u = broker.submit_order(order("a1-300"))
    assert u.status == "rejected" and "liquidation only" in u.reason
    big = broker.submit_order(order("a1-301", qty=1_000_000))
    assert big.status == "rejected" and "insufficient buying power" in big.reason
    sell = broker.submit_order(order("a1-302", qty=5, side="sell"))
    assert sell.status == "rejected" and "insufficient qty" in sell.reason
    assert emulator.orders == {}


def test_async_reject_and_cancel_reach_listeners(broker, rec, emulator) -> None:
    emulator.faults.fill_mode = "reject_async"
    broker.submit_order(order("a1-400"))
    assert wait_until(lambda: rec.final("a1-400") is not None)
    assert rec.final("a1-400").status == "rejected"
    emulator.faults.fill_mode = "hold"
    broker.submit_order(order("a1-401"))
    assert [o.client_order_id for o in broker.list_open_orders()] == ["a1-401"]
    broker.cancel_order("a1-401")
    assert wait_until(lambda: rec.final("a1-401") is not None)
    assert rec.final("a1-401").status == "canceled" and rec.final("a1-401").reason
    broker.cancel_order("a1-401")  # already final: nothing to do, no error
    assert broker.list_open_orders() == []


def test_broker_side_cancel_and_blocked_account(broker, rec, emulator) -> None:
    emulator.faults.fill_mode = "cancel"  # e.g. Alpaca cancels a day order at the close
    broker.submit_order(order("a1-450"))
    assert wait_until(lambda: rec.final("a1-450") is not None)
    assert rec.final("a1-450").status == "canceled" and rec.final("a1-450").filled_qty == 0
    emulator.trading_blocked = True
    assert broker.get_account().trading_blocked
    u = broker.submit_order(order("a1-451"))
    assert u.status == "rejected" and "blocked" in u.reason


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_errors_retried_without_double_orders(broker, rec, emulator, status) -> None:
    emulator.faults.fail_status, emulator.faults.fail_count = status, 2
    emulator.faults.fail_prefix = "/v2/orders"
    u = broker.submit_order(order("a1-500"))
    assert u.client_order_id == "a1-500"
    assert len(emulator.orders) == 1
    assert wait_until(lambda: rec.final("a1-500") is not None)


def test_error_after_the_order_was_placed_finds_it_instead_of_resubmitting(broker, emulator) -> None:
    emulator.faults.fail_after_accept = 1  # stored, then answered with 504
    u = broker.submit_order(order("a1-600"))
    assert u.client_order_id == "a1-600" and u.broker_order_id
    assert emulator.order_posts == 1  # looked up by client order id, not resubmitted
    assert len(emulator.orders) == 1


def test_timeout_after_the_order_was_placed_finds_it(emulator, tmp_path) -> None:
    """The answer never arrives in time (a hung network): look up, never resubmit."""
    b = AlpacaBroker.from_settings(make_settings(emulator, tmp_path), request_timeout=0.3, **FAST)
    try:
        emulator.faults.slow_after_accept = 1.0
        u = b.submit_order(order("a1-650"))
        assert u.client_order_id == "a1-650" and u.broker_order_id
        assert emulator.order_posts == 1 and len(emulator.orders) == 1
    finally:
        b.close()


def test_same_client_order_id_twice_places_one_order(broker, emulator) -> None:
    first = broker.submit_order(order("a1-700"))
    again = broker.submit_order(order("a1-700"))
    assert again.broker_order_id == first.broker_order_id
    assert emulator.order_posts == 2 and len(emulator.orders) == 1


def test_persistent_failure_raises_retryable_error(broker, emulator) -> None:
    emulator.faults.fail_status, emulator.faults.fail_count = 503, 100
    with pytest.raises(BrokerError) as ei:
        broker.get_account()
    assert ei.value.retryable and "503" in str(ei.value)


def test_polling_fallback_when_trade_stream_is_refused(emulator, tmp_path) -> None:
    emulator.faults.refuse_trade_auth = True
    b = AlpacaBroker.from_settings(make_settings(emulator, tmp_path), **FAST)
    try:
        r = Recorder()
        b.add_order_listener(r)
        emulator.faults.fill_mode = "hold"
        b.submit_order(order("a1-800", 4))
        emulator.fill_order("a1-800", qty=1, price=100.0)
        assert wait_until(lambda: any(u.filled_qty == 1 for u in r.for_cid("a1-800")))
        emulator.fill_order("a1-800", price=101.0)
        assert wait_until(lambda: r.final("a1-800") is not None)
        assert r.final("a1-800").filled_qty == 4
        assert r.final("a1-800").filled_avg_price == pytest.approx(100.75)
        assert not b.trade_stream.connected
        assert emulator.trade_auths <= 3  # refused logins are paced (0.5 s), not a storm
    finally:
        b.close()


def test_trade_stream_reconnects_after_drop(broker, rec, emulator) -> None:
    n = broker.trade_stream.connects
    emulator.drop_trade_connections()
    assert wait_until(lambda: broker.trade_stream.connects > n and broker.trade_stream.connected)
    broker.submit_order(order("a1-900"))
    assert wait_until(lambda: rec.final("a1-900") is not None)


def test_keys_alone_mean_paper(emulator, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    s = make_settings(emulator, tmp_path, mode="auto")
    assert s.effective_mode == "paper"
    b = AlpacaBroker.from_settings(s, **FAST)
    try:
        assert b.name == "alpaca-paper" and not b.live
    finally:
        b.close()
    assert "paper trading" in caplog.text


def test_fill_missed_during_a_stream_drop_is_found_by_polling(broker, rec, emulator) -> None:
    emulator.faults.fill_mode = "hold"
    broker.submit_order(order("a1-950", 6))
    emulator.drop_trade_connections()
    emulator.fill_order("a1-950", price=50.0)  # nobody is listening: the event is lost
    assert wait_until(lambda: rec.final("a1-950") is not None)
    assert rec.final("a1-950").filled_qty == 6
    assert rec.final("a1-950").filled_avg_price == pytest.approx(50.0)


def test_live_mode_and_logs_never_show_keys(emulator, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    b = AlpacaBroker.from_settings(make_settings(emulator, tmp_path, mode="live"), **FAST)
    try:
        assert b.name == "alpaca-live" and b.live
        b.get_account()
    finally:
        b.close()
    assert "LIVE trading" in caplog.text
    assert emulator.secret_key not in caplog.text and emulator.key_id not in caplog.text
