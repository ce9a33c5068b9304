"""The trade-updates stream (websocket-client) on the shared reconnecting base: a path that
dies silently (pings unanswered) is replaced, as on the market-data stream."""

from __future__ import annotations

import time

from app.broker.alpaca_trade_stream import TradeUpdatesStream
from tests.waiting import wait_until


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
        time.sleep(0.8)
        assert s.connects == 1 and s.pings_sent >= 3  # pongs come back: all is well
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
        n = emulator.trade_auths
        time.sleep(0.2)
        assert emulator.trade_auths <= n + 1  # paced (auth_retry), not a storm
        emulator.faults.refuse_trade_auth = False
        assert wait_until(lambda: s.connected, timeout=5)
    finally:
        s.stop()
