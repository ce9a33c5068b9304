"""Engine events to a loopback apprise receiver through a real demo engine: stop-all is one
message (not one per algorithm), the stream-down timer, the event switches."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.config import load_settings
from app.marketdata.base import FeedStatus
from app.ops.notify import EngineNotifications, Notifier
from tests.ops.test_notify import Receiver


@pytest.fixture
def engine(tmp_path: Path):
    from app.engine.runner import build_engine

    settings = load_settings(tmp_path / "none.toml", env={
        "AUTOTRADER_DATA_DIR": str(tmp_path / "d"), "AUTOTRADER_DEMO_START_DATE": "2024-06-04"})
    eng, _ = build_engine(settings)
    yield eng
    eng.close()
    eng.system.close()
    eng.market.close()


def test_stop_all_is_one_message_and_switches_hold(engine) -> None:
    r = Receiver()
    try:
        n = Notifier([r.url], batch_seconds=0.3, min_interval=0)
        notes = EngineNotifications(engine, n, stream_minutes=0.001,
                                    events={"stop_all", "failures"})
        engine.add_listener(notes)
        engine.stop_all(liquidate=False)  # listeners are called before it returns
        assert n.close()  # the worker ended: every message stop-all queued was delivered
        assert len(r.posts) == 1
        assert r.posts[0]["title"] == "Stop all" and "3 algorithms stopped" in r.posts[0]["message"]
        n = notes.notifier = Notifier([r.url], batch_seconds=0.3, min_interval=0)
        notes.on_fill(1, {"type": "buy", "shares": 1, "ticker": "AAPL", "price": 1.0})  # off
        notes.on_feed_status(FeedStatus("reconnecting", "network"))
        time.sleep(0.1)
        notes.on_feed_status(FeedStatus("reconnecting", "network"))  # the 30 s re-check
        assert r.wait(2)
        assert n.close()  # everything queued delivered: the fill (switched off) said nothing
        assert len(r.posts) == 2
        assert r.posts[1]["title"] == "Market data stream down"
    finally:
        r.close()
