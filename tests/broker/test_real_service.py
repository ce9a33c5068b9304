"""Opt-in check against Alpaca itself (paper account, IEX history, the 24/7 test stream).

Run by hand before a release, never in CI: needs paper keys in APCA_API_KEY_ID /
APCA_API_SECRET_KEY, network access and AUTOTRADER_ALPACA_LIVE_CHECK=1. Places no order.
Checks that what the emulator and the fixtures assume still holds at Alpaca.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("AUTOTRADER_ALPACA_LIVE_CHECK") != "1" or os.environ.get("CI")
    or not (os.environ.get("APCA_API_KEY_ID") and os.environ.get("APCA_API_SECRET_KEY")),
    reason="opt-in: AUTOTRADER_ALPACA_LIVE_CHECK=1 and paper keys (never in CI)")


@pytest.fixture
def real_settings(tmp_path):
    from app.config import load_settings

    return load_settings(path=tmp_path / "absent.toml", env=dict(os.environ),
                         overrides={"mode": "paper", "data_dir": str(tmp_path / "data")})


def test_paper_account_and_clock(real_settings) -> None:
    from app.broker.alpaca import AlpacaBroker

    b = AlpacaBroker.from_settings(real_settings, stream=False)
    try:
        assert b.name == "alpaca-paper"
        acct = b.get_account()
        assert acct.currency == "USD"
        c = b.get_clock()
        assert c.next_open > c.timestamp - timedelta(days=7)
    finally:
        b.close()


def test_iex_history_for_two_symbols_in_one_request(real_settings, market_store, calendar) -> None:
    from app.clock import WallClock
    from app.marketdata.backfill import Backfiller

    bf = Backfiller(real_settings, market_store, calendar, clock=WallClock())
    day = calendar.sessions_before(WallClock().now(), 1)[0]
    counts = bf.backfill_many(["SPY", "AAPL"], day.open, day.close)
    assert counts["SPY"] > 300 and bf.requests >= 1  # one request for both symbols


def test_test_stream_speaks_the_documented_messages(real_settings) -> None:
    import websocket

    ws = websocket.create_connection("wss://stream.data.alpaca.markets/v2/test", timeout=15)
    try:
        assert json.loads(ws.recv()) == [{"T": "success", "msg": "connected"}]
        a = real_settings.alpaca
        ws.send(json.dumps({"action": "auth", "key": str(a.key_id), "secret": str(a.secret_key)}))
        assert json.loads(ws.recv()) == [{"T": "success", "msg": "authenticated"}]
        ws.send(json.dumps({"action": "subscribe", "bars": ["FAKEPACA"],
                            "updatedBars": ["FAKEPACA"], "statuses": ["FAKEPACA"]}))
        (sub,) = json.loads(ws.recv())
        assert sub["T"] == "subscription" and sub["bars"] == ["FAKEPACA"]
        ws.ping(b"at")  # answered by the server (websocket-client reads the pong)
    finally:
        ws.close()
