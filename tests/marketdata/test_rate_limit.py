"""The emulator's rate-limit counter (issue 11) and our clients under it.

Alpaca: 200 requests a minute per key on the trading API (alpaca.markets/docs/api-references/
trading-api/, Rate Limit), a separate 200 a minute on the free data plan; every response
carries X-RateLimit-Limit / -Remaining / -Reset, Reset a Unix time in seconds, and a request
past the limit is answered 429 (docs.alpaca.markets/us/docs/broker-api-rate-limits)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import timedelta

from app.marketdata.backfill import Backfiller
from tests.fakes.alpaca_emulator import AlpacaEmulator
from tests.waiting import wait_until


def get(emu: AlpacaEmulator, path: str, method: str = "GET",
        body: dict | None = None) -> tuple[int, dict[str, str], object]:
    req = urllib.request.Request(emu.url + path, method=method,
                                 data=json.dumps(body).encode() if body else None,
                                 headers={"APCA-API-KEY-ID": emu.key_id,
                                          "APCA-API-SECRET-KEY": emu.secret_key,
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def test_every_answer_carries_the_headers_and_the_two_apis_count_apart(emulator) -> None:
    seen = []
    for _ in range(3):
        st, h, _ = get(emulator, "/v2/account")
        assert st == 200
        seen.append(int(h["X-RateLimit-Remaining"]))
        assert h["X-RateLimit-Limit"] == "200"
        assert 0 < int(h["X-RateLimit-Reset"]) - time.time() <= 61  # a Unix time, seconds
    assert seen == [199, 198, 197]
    st, h, _ = get(emulator, "/v2/stocks/bars?symbols=AAPL&timeframe=1Min&feed=iex")
    assert st == 200 and h["X-RateLimit-Remaining"] == "199"  # the data API's own window


def test_past_the_limit_429_until_the_reset_and_nothing_is_done(emulator) -> None:
    f = emulator.faults
    f.rate_limit, f.rate_window = 3, 1.5
    for _ in range(3):
        assert get(emulator, "/v2/account")[0] == 200
    order = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market",
             "time_in_force": "day", "client_order_id": "rl-1"}
    st, h, body = get(emulator, "/v2/orders", "POST", order)
    assert st == 429 and h["X-RateLimit-Remaining"] == "0"
    assert body == {"code": 42910000, "message": "rate limit exceeded"}
    assert emulator.find_order_by_cid("rl-1") is None  # refused, not placed
    reset = int(h["X-RateLimit-Reset"])
    time.sleep(max(0.0, reset - time.time()) + 0.05)
    st, h, _ = get(emulator, "/v2/orders", "POST", order)
    assert st == 200 and h["X-RateLimit-Remaining"] == "2"
    assert emulator.find_order_by_cid("rl-1") is not None


def test_backfill_waits_for_the_window_to_reset(settings, market_store, calendar, clock,
                                                emulator) -> None:
    """More requests than the window allows: the 429s are waited out (until X-RateLimit-Reset,
    read against Alpaca's Date header) and every bar arrives."""
    f = emulator.faults
    f.rate_limit, f.rate_window = 2, 1.0
    bf = Backfiller(settings, market_store, calendar, clock=clock, rate_limit_min=0.05,
                    error_wait=0.01)
    end = clock.now()
    t0 = time.monotonic()
    got = [bf.fetch_rows([t], end - timedelta(minutes=30), end) for t in ("AAPL", "MSFT", "GE",
                                                                         "SPY", "NVDA")]
    assert emulator.rate_limited >= 1  # the counter did refuse
    assert all(len(rows[t]) == 30 for rows, t in zip(got, ("AAPL", "MSFT", "GE", "SPY", "NVDA"),
                                                     strict=True))
    assert bf.requests == 5 + emulator.rate_limited
    assert time.monotonic() - t0 >= 0.9  # waited for a reset, did not spin
    assert emulator.rate_limited <= 4  # one 429 per window, not a storm


def exhaust(emu: AlpacaEmulator, path: str) -> float:
    """Use up the current window of ``path``'s API (200 requests, as Alpaca counts them);
    returns its X-RateLimit-Reset (Unix seconds)."""
    reset = 0.0
    while True:
        st, h, _ = get(emu, path)
        reset = float(h["X-RateLimit-Reset"])
        if st == 429:
            return reset
        assert st == 200


def test_realism_counts_alpacas_documented_limit(emulator) -> None:
    assert emulator.realism and emulator.faults.rate_limit == 200
    assert emulator.faults.rate_window == 60.0
    # The tests' own traffic stays far under it (the most any emulator test made in one
    # window, measured with the limit on: 22 trading, 3 data requests).


def test_an_order_past_the_limit_waits_for_the_reset_and_is_placed_once(emulator,
                                                                        settings) -> None:
    """200 requests used (another app on the same keys, say): the order's POST gets 429 and
    nothing is placed; the broker waits until X-RateLimit-Reset, not less, not in a storm,
    and places it exactly once."""
    from app.broker.alpaca import AlpacaBroker
    from tests.broker.test_broker import FAST, Recorder, order

    emulator.faults.rate_window = 6.0  # the documented 200, in a shorter window
    b = AlpacaBroker.from_settings(settings, **{**FAST, "rate_limit_min": 0.05,
                                                "poll_interval": 30.0, "stale_after": 30.0})
    rec = Recorder()
    b.add_order_listener(rec)
    try:
        assert b.trade_stream is not None and b.trade_stream.wait_connected(5)
        reset = exhaust(emulator, "/v2/clock")
        refused = emulator.rate_limited
        b.submit_order(order("rl-order", 3))
        assert time.time() >= reset - 1.0  # Reset is whole seconds: sent at most 1 s early
        assert emulator.rate_limited - refused <= 2  # one 429 per window, not a storm
        placed = [o for o in emulator.orders.values() if o["client_order_id"] == "rl-order"]
        assert len(placed) == 1
        assert wait_until(lambda: rec.final("rl-order") is not None)
        assert rec.final("rl-order").filled_qty == 3
    finally:
        b.close()


def test_gap_backfill_past_the_data_limit_loses_no_bar(emulator, settings, market_store,
                                                      calendar, clock) -> None:
    """The data API's window is used up when the stream misses a minute: the gap batch gets
    429, waits for the reset (the Backfiller's floor of 1 s or Reset, whichever is later)
    and stores the bar; the stream stays connected throughout."""
    from tests.marketdata.test_stream import NOW, make_stream, minutes_in_db, started

    emulator.faults.rate_window = 6.0
    s = started(make_stream(settings, market_store, calendar, clock))
    try:
        s.subscribe("AAPL")
        assert wait_until(lambda: emulator.subscribed() == {"AAPL"})
        emulator.emit_minute(NOW - 60)
        assert wait_until(lambda: minutes_in_db(market_store, "AAPL") == [NOW - 60])
        exhaust(emulator, "/v1/corporate-actions?symbols=ZZZZ")  # a cheap data-API call
        refused = emulator.rate_limited
        clock.advance(minutes=2)
        emulator.faults.skip_stream.add(("AAPL", NOW))
        emulator.emit_minute(NOW)
        emulator.emit_minute(NOW + 60)
        assert wait_until(lambda: minutes_in_db(market_store, "AAPL") == [NOW - 60, NOW,
                                                                          NOW + 60], timeout=15)
        assert emulator.rate_limited > refused  # the gap batch did meet the limit
        assert emulator.rate_limited - refused <= 2
        assert s.status.state == "connected" and emulator.market_auths == 1
    finally:
        s.stop()
