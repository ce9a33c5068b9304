"""The trade-updates stream (websocket-client) on the shared reconnecting base: a path that
dies silently (pings unanswered) is replaced, as on the market-data stream."""

from __future__ import annotations

import pytest

from app.broker.alpaca_trade_stream import TradeUpdatesStream
from tests.marketdata.test_stream import assert_paced
from tests.waiting import nothing_before, wait_until


def make(emulator, events: list[dict], **kw) -> TradeUpdatesStream:
    opts: dict = dict(recv_timeout=0.05, backoff_base=0.02, backoff_max=0.1, auth_retry=0.3,
                      ping_interval=0.1, pong_timeout=0.3)
    opts.update(kw)
    return TradeUpdatesStream(emulator.trade_stream_url, emulator.key_id, emulator.secret_key,
                              events.append, **opts)


def test_missing_pong_replaces_the_trade_stream(emulator) -> None:
    events: list[dict] = []
    s = make(emulator, events)
    s.start()
    try:
        assert s.wait_connected(5)
        # A ping goes out only once the last one's pong came back (else, after
        # pong_timeout, the connection is dropped): five pings on one connection, four pongs.
        nothing_before(lambda: s.pings_sent >= 5, lambda: s.connects != 1,
                       what="a connection whose pongs come back replaced")
        emulator.faults.no_pong = True
        assert wait_until(lambda: s.connects >= 2, timeout=5)
        emulator.faults.no_pong = False
        assert wait_until(lambda: s.connected and s.state == "connected")
    finally:
        s.stop()
    assert s.state == "stopped" and not s.connected


def test_refused_keys_wait_then_retry(emulator) -> None:
    emulator.faults.refuse_trade_auth = True
    s = make(emulator, [])
    s.start()
    try:
        assert wait_until(lambda: s.state == "error")
        assert "refused the API keys" in s.detail
        assert_paced(lambda: emulator.trade_auths, s.auth_retry, more=2)  # not a storm
        emulator.faults.refuse_trade_auth = False
        assert wait_until(lambda: s.connected, timeout=5)
    finally:
        s.stop()


def test_every_reconnect_but_the_first_open_calls_on_reconnect(emulator) -> None:
    calls: list[int] = []
    s = make(emulator, [], on_reconnect=lambda: calls.append(s.connects))
    s.start()
    try:
        assert s.wait_connected(5)
        assert calls == []
        for n in (2, 3):
            emulator.drop_trade_connections()
            assert wait_until(lambda n=n: s.connects == n and s.connected)
        assert calls == [2, 3]
        # The pauses between tries are the one retry policy's (retry.py), jittered.
        assert s.policy.base == 0.02 and s.policy.cap == 0.1
        assert all(0.05 <= s.backoff(9) <= 0.1 for _ in range(50))
    finally:
        s.stop()


def test_a_drop_in_the_middle_of_a_fill_loses_no_fill(emulator, settings) -> None:
    """Partial fills come on the stream; the stream drops; the rest of the order fills while
    nobody listens (Alpaca replays nothing). The reconnect makes the broker ask at once: the
    last fill arrives in seconds with the cumulative quantity and price, though the slow poll
    of a quiet order (``stale_after``) and of a down stream (``poll_interval``) are a minute."""
    from app.broker.alpaca import AlpacaBroker
    from tests.broker.test_broker import Recorder, order

    emulator.faults.fill_mode = "hold"
    b = AlpacaBroker.from_settings(settings, backoff_base=0.01, backoff_max=0.05,
                                   rate_limit_wait=0.01, poll_interval=60.0, stale_after=60.0,
                                   stream_backoff=0.3, stream_auth_retry=0.5)
    rec = Recorder()
    b.add_order_listener(rec)
    try:
        assert b.trade_stream is not None and b.trade_stream.wait_connected(5)
        b.submit_order(order("h4-mid", 6))
        emulator.fill_order("h4-mid", qty=2, price=100.0)
        assert wait_until(lambda: any(u.filled_qty == 2 for u in rec.for_cid("h4-mid")))
        n = b.trade_stream.connects
        assert emulator.drop_trade_connections() == 1
        emulator.fill_order("h4-mid", qty=1, price=101.0)  # nobody listening: lost events
        emulator.fill_order("h4-mid", price=102.0)
        assert wait_until(lambda: rec.final("h4-mid") is not None, timeout=8)
        assert b.trade_stream.connects > n
        final = rec.final("h4-mid")
        assert final.filled_qty == 6
        assert final.filled_avg_price == pytest.approx((200 + 101 + 306) / 6)
        seen = [u.filled_qty for u in rec.for_cid("h4-mid")]
        assert seen == sorted(seen) and seen[-1] == 6  # cumulative, never backwards
    finally:
        b.close()
