"""The market stream skips websocket-client's pure-Python UTF-8 check (90 ms a 1,000-bar frame,
issue 15's ingest row): a text frame that is not UTF-8 must still be refused, by json.loads,
and skipped like any unreadable frame, the connection and the next bars unaffected."""

from __future__ import annotations

from tests.marketdata.test_stream import NOW, started, stream  # noqa: F401  # the fixture
from tests.waiting import wait_until


def test_a_text_frame_that_is_not_utf8_is_skipped(stream, emulator, market_store,  # noqa: F811
                                                  caplog) -> None:
    started(stream)
    stream.subscribe("AAPL")
    assert wait_until(lambda: emulator.subscribed() == {"AAPL"})
    session = next(s for s in emulator.market_sessions if s.authed)
    bar = emulator.bar("AAPL", NOW - 60)
    assert bar is not None
    bad = b'[{"T":"b","S":"AAPL","t":"\xff\xfe","o":1}]'
    session.conn.send(0x1, bad)  # a text frame whose bytes are not UTF-8
    emulator.emit_raw([dict(bar, T="b", S="AAPL")])
    assert wait_until(lambda: market_store.latest_ts("AAPL") == NOW - 60)
    assert stream.connects == 1 and market_store.count("AAPL") == 1
    assert "unreadable message skipped" in caplog.text
