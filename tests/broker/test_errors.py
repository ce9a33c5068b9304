"""Orders and errors as Alpaca sends them (issue 11, section 3), through the real alpaca-py
clients on the emulator: duplicate ids by code, 422 after an uncertain send, 403 on reads,
X-RateLimit-Reset on Alpaca's clock, feeds the data API takes, per-install id prefixes."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest

from app.broker.alpaca import AlpacaBroker
from app.broker.alpaca_clients import historical_feed, retry_after
from app.broker.base import BrokerError, OrderRequest
from app.config import ConfigError
from app.engine.orders import ORDER_ID_PREFIX_KEY, OrderBook
from app.marketdata.backfill import Backfiller, BackfillError
from tests.fakes.emulator_fixtures import make_settings

FAST = dict(backoff_base=0.01, backoff_max=0.05, rate_limit_wait=0.01, rate_limit_min=0.01,
            poll_interval=0.2, stale_after=0.5, stream_backoff=0.05, stream_auth_retry=0.5)


@pytest.fixture
def broker(settings):
    b = AlpacaBroker.from_settings(settings, stream=False, **FAST)
    yield b
    b.close()


def order(cid: str, qty: int = 3) -> OrderRequest:
    return OrderRequest(client_order_id=cid, ticker="AAPL", side="buy", qty=qty)


def test_duplicate_is_recognised_by_code_not_words(broker, emulator) -> None:
    emulator.faults.duplicate_message = "une autre formulation"  # the words may change
    first = broker.submit_order(order("atx-1-1"))
    again = broker.submit_order(order("atx-1-1"))
    assert again.broker_order_id == first.broker_order_id and again.status != "rejected"
    assert len(emulator.orders) == 1


def test_40010001_for_an_invalid_order_is_a_rejection_after_a_lookup(broker, emulator) -> None:
    cid = "x" * 49  # Alpaca: client_order_id must be no more than 48 characters (40010001)
    u = broker.submit_order(order(cid))
    assert u.status == "rejected" and "48 characters" in u.reason
    lookups = [r for r in emulator.requests if r[1] == "/v2/orders:by_client_order_id"]
    assert len(lookups) == 1 and emulator.orders == {}


def test_any_422_after_an_uncertain_send_looks_the_order_up(broker, emulator) -> None:
    """504 after Alpaca stored the order, the lookup before the resend wrongly says "not
    found" (a stale read), the resubmit gets a 422 with a code we have never seen: the order
    is found by its id, never placed twice. (A lookup that fails outright sends nothing
    again: app/broker/retry.py, tests/engine/test_send_failures_alpaca.py.)"""
    f = emulator.faults
    f.fail_after_accept = 1
    f.fail_status, f.fail_count, f.fail_prefix = 404, 1, "/v2/orders:by"
    f.duplicate_code, f.duplicate_message = 42210099, "something else"
    u = broker.submit_order(order("atx-2-1"))
    assert u.broker_order_id and u.status != "rejected"
    assert emulator.order_posts == 2 and len(emulator.orders) == 1


def test_403_on_a_read_says_restricted_account_not_bad_keys(broker, emulator) -> None:
    emulator.faults.forbid_reads = "access to this account is restricted"
    with pytest.raises(BrokerError) as ei:
        broker.get_account()
    assert ei.value.status == 403 and not ei.value.retryable
    assert "keys work but this account may not" in str(ei.value)
    assert "restricted" in str(ei.value)


def test_401_on_a_read_says_the_keys(emulator, tmp_path) -> None:
    b = AlpacaBroker.from_settings(make_settings(emulator, tmp_path, **{
        "alpaca.secret_key": "wrong"}), stream=False)
    try:
        with pytest.raises(BrokerError, match="keys were not accepted") as ei:
            b.get_account()
        assert ei.value.status == 401
    finally:
        b.close()


def _http_error(headers: dict[str, str]) -> Exception:
    e = Exception("{}")
    e.response = SimpleNamespace(headers=headers)  # type: ignore[attr-defined]
    return e


def test_rate_limit_reset_is_read_on_alpacas_clock() -> None:
    now = time.time()
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now - 40))
    # Our clock is 40 s ahead of Alpaca's: Reset (Alpaca's now + 5) is in our past.
    e = _http_error({"X-RateLimit-Reset": str(int(now - 35)), "Date": date})
    assert 4.0 <= retry_after(e, default=30.0) <= 6.0
    # Without a Date header a reset in our past still waits the minimum, never 0.
    e = _http_error({"X-RateLimit-Reset": str(int(now - 35))})
    assert retry_after(e, default=30.0) == 1.0
    assert retry_after(e, default=30.0, minimum=2.5) == 2.5
    # A reset far away (a clock behind ours) is capped.
    assert retry_after(_http_error({"X-RateLimit-Reset": str(int(now + 9999))}), 3.0) == 120.0
    assert retry_after(_http_error({}), default=3.0) == 3.0


def test_429_with_headers_waits_until_alpacas_reset_despite_skew(settings, market_store,
                                                                 calendar, clock,
                                                                 emulator) -> None:
    f = emulator.faults
    f.clock_skew = -60.0  # our clock 60 s ahead of Alpaca's
    f.rate_limit_reset_in = 1.0
    f.fail_status, f.fail_count, f.fail_prefix = 429, 1, "/v2/stocks"
    bf = Backfiller(settings, market_store, calendar, clock=clock, rate_limit_wait=30.0,
                    rate_limit_min=0.01)
    t0 = time.monotonic()
    bf.backfill_range("AAPL", clock.now() - timedelta(minutes=10), clock.now())
    waited = time.monotonic() - t0
    assert 0.9 <= waited < 3.5, waited  # Reset - Date (both Alpaca's), not Reset - our clock
    assert market_store.count("AAPL") == 10


def test_data_api_403_distinguishes_keys_and_plan(emulator, market_store, calendar, clock,
                                                  tmp_path) -> None:
    bad = make_settings(emulator, tmp_path, **{"alpaca.secret_key": "wrong"})
    with pytest.raises(BackfillError, match="keys are wrong or were reset"):
        Backfiller(bad, market_store, calendar, clock=clock).prepare("AAPL")
    sip = make_settings(emulator, tmp_path, **{"alpaca.feed": "sip"})
    with pytest.raises(BackfillError, match="data plan does not cover"):
        Backfiller(sip, market_store, calendar, clock=clock).prepare("AAPL")


def test_delayed_sip_history_is_sip_without_the_newest_15_minutes(emulator, market_store,
                                                                  calendar, clock,
                                                                  tmp_path) -> None:
    assert historical_feed("delayed_sip") == ("sip", 900)
    assert historical_feed("iex") == ("iex", 0)
    with pytest.raises(ValueError):
        historical_feed("delayed_iex")
    s = make_settings(emulator, tmp_path, **{"alpaca.feed": "delayed_sip"})
    bf = Backfiller(s, market_store, calendar, clock=clock)
    bf.backfill_range("MSFT", clock.now() - timedelta(minutes=30), clock.now())
    newest = market_store.latest_ts("MSFT")
    assert newest is not None and newest < clock.now().timestamp() - 15 * 60
    assert all("feed=sip" in q for q in emulator.queries if "stocks/bars" in q)


@pytest.mark.parametrize("key,value", [
    ("alpaca.trading_url", "ftp://x"), ("alpaca.stream_url", "http://127.0.0.1:1/v2/iex"),
    ("alpaca.data_url", "https://u:p@data.alpaca.markets"),
    ("alpaca.trading_url", "https://paper-api.alpaca.markets/v2"),
    ("alpaca.feed", "delayed_iex")])
def test_config_values_are_checked_against_what_alpaca_takes(emulator, tmp_path, key,
                                                             value) -> None:
    with pytest.raises(ConfigError, match=key):
        make_settings(emulator, tmp_path, **{key: value})


def test_client_order_ids_carry_a_per_install_prefix(system_store, tmp_path) -> None:
    from db.system import SystemStore

    shared = SimpleNamespace(shared_account=True)
    book = OrderBook(system_store, shared, clock=None)  # type: ignore[arg-type]
    p = book.prefix
    assert p.startswith("at") and len(p) == 6 and p != "at"
    assert system_store.get_setting(ORDER_ID_PREFIX_KEY) == p
    assert OrderBook(system_store, shared, clock=None).prefix == p  # type: ignore[arg-type]
    other = SystemStore(tmp_path / "other-install.db")  # a second install on the same account
    try:
        assert OrderBook(other, shared, clock=None).prefix != p  # type: ignore[arg-type]
    finally:
        other.close()
    simulated = SimpleNamespace()
    assert OrderBook(system_store, simulated, clock=None).prefix == "at"  # type: ignore[arg-type]
