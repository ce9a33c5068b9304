"""AlpacaStream (websocket-client, JSON) against the emulator's market-data websocket."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from app.marketdata.backfill import Backfiller
from app.marketdata.base import FeedStatus
from app.marketdata.stream import AlpacaStream
from db.market import Bar
from db.timeutil import from_epoch
from tests.fakes.alpaca_emulator import AlpacaEmulator
from tests.fakes.emulator_fixtures import SESSION_NOW
from tests.waiting import nothing_before, wait_until

NOW = int(SESSION_NOW.timestamp())
FAST = dict(recv_timeout=0.05, backoff_base=0.02, backoff_max=0.1, limit_retry=0.3,
            auth_retry=0.3, silence_timeout=60.0, gap_delay=0.0, ping_interval=0.5,
            pong_timeout=2.0)


class Seen:
    """Bar listener that also checks each bar is already in the market DB when handed on."""

    def __init__(self, market) -> None:
        self.market = market
        self.bars: list[Bar] = []
        self.stored_first: list[bool] = []
        self.lock = threading.Lock()

    def __call__(self, bar: Bar) -> None:
        in_db = bool(self.market.bars_between(bar.ticker, bar.ts, bar.ts + 60))
        with self.lock:
            self.bars.append(bar)
            self.stored_first.append(in_db)


def make_stream(settings, market_store, calendar, clock, **kw) -> AlpacaStream:
    opts = dict(FAST)
    opts.update(kw)
    bf = Backfiller(settings, market_store, calendar, clock=clock, rate_limit_wait=0.01,
                    error_wait=0.01)
    return AlpacaStream(settings, market_store, calendar, clock=clock, backfiller=bf, **opts)


@pytest.fixture
def stream(settings, market_store, calendar, clock) -> Iterator[AlpacaStream]:
    s = make_stream(settings, market_store, calendar, clock)
    yield s
    s.stop()


def started(s: AlpacaStream) -> AlpacaStream:
    s.start()
    assert wait_until(lambda: s.status.state == "connected"), s.status
    return s


class SilenceChecks:
    """Records each run of a stream's silence check (``_check_silence``, which raises
    ``Dropped`` to replace a connection): the monotonic time it started, or the exception it
    raised. A test's marker that "the check has run since ..." for a negative assertion
    (nothing was replaced) instead of a fixed sleep. The check itself runs unchanged."""

    def __init__(self, s: AlpacaStream) -> None:
        self.started: list[float] = []
        self.raised: list[BaseException] = []
        real = s._check_silence

        def check() -> None:
            t = time.monotonic()
            try:
                real()
            except BaseException as e:
                self.raised.append(e)
                raise
            self.started.append(t)

        s._check_silence = check  # type: ignore[method-assign]

    def ran_since(self, t: float, times: int = 1) -> bool:
        """Whether the check started and passed ``times`` times after ``t``."""
        return sum(1 for x in self.started if x > t) >= times


def minutes_in_db(market, ticker: str) -> list[int]:
    return [r[0] for r in market.bars_between(ticker, 0, 2**40)]


def test_bars_stored_then_handed_on_regular_session_only(stream, emulator, market_store) -> None:
    seen = Seen(market_store)
    stream.add_bar_listener(seen)
    started(stream)
    stream.subscribe("AAPL")
    assert wait_until(lambda: emulator.subscribed() == {"AAPL"})
    emulator.emit_minute(NOW - 60)
    premarket = NOW - 6 * 3600  # 04:00 New York: Alpaca sends it, we do not keep it
    emulator.emit_minute(premarket)
    emulator.emit_minute(NOW)
    assert wait_until(lambda: len(seen.bars) == 2)
    assert [b.ts for b in seen.bars] == [NOW - 60, NOW] and all(seen.stored_first)
    assert stream.bars_received == 3 and stream.bars_stored == 2
    assert minutes_in_db(market_store, "AAPL") == [NOW - 60, NOW]


@pytest.mark.parametrize("release_order", [("a", "b"), ("b", "a")])
def test_two_algorithms_share_and_release_a_ticker(stream, emulator, release_order) -> None:
    started(stream)
    users = {"a": "MSFT", "b": "MSFT"}
    for who in ("a", "b"):
        stream.subscribe(users[who])
    stream.subscribe("GE")
    assert wait_until(lambda: emulator.subscribed() == {"MSFT", "GE"})
    assert stream.subscriptions() == {"MSFT": 2, "GE": 1}
    stream.unsubscribe(users[release_order[0]])
    # The marker: a subscribe sent after it on the same connection (the emulator handles a
    # connection's messages in order), so a wrong unsubscribe would have reached it first.
    stream.subscribe("IBM")
    nothing_before(lambda: "IBM" in emulator.subscribed(),
                   lambda: "MSFT" not in emulator.subscribed(),
                   what="MSFT unsubscribed while an algorithm still uses it")
    assert emulator.subscribed() == {"MSFT", "GE", "IBM"}
    stream.unsubscribe(users[release_order[1]])
    assert wait_until(lambda: emulator.subscribed() == {"GE", "IBM"})
    stream.unsubscribe("MSFT")  # one release too many is ignored
    assert stream.subscriptions() == {"GE": 1, "IBM": 1}


def test_subscribe_before_start_is_sent_after_auth(stream, emulator) -> None:
    stream.subscribe("NVDA")
    started(stream)
    assert wait_until(lambda: emulator.subscribed() == {"NVDA"})


def test_dropped_connection_recovers_with_no_missing_minute(stream, emulator, market_store,
                                                           clock) -> None:
    statuses: list[FeedStatus] = []
    stream.add_status_listener(statuses.append)
    stream.prepare("AAPL")  # history up to 10:00
    started(stream)
    stream.subscribe("AAPL")
    assert wait_until(lambda: emulator.subscribed() == {"AAPL"})
    for m in range(3):  # 10:00, 10:01, 10:02 live
        clock.advance(minutes=1)
        emulator.emit_minute(NOW + 60 * m)
    assert wait_until(lambda: market_store.latest_ts("AAPL") == NOW + 120)
    emulator.faults.linger_406 = 1  # the dropped session lingers once: 406, paced retry
    emulator.drop_market_connections()
    for m in range(3, 6):  # 10:03-10:05 happen while we are away: lost on the stream
        clock.advance(minutes=1)
        emulator.emit_minute(NOW + 60 * m)
    assert wait_until(lambda: stream.connects >= 2 and stream.status.state == "connected")
    assert wait_until(lambda: emulator.subscribed() == {"AAPL"})
    clock.advance(minutes=1)
    emulator.emit_minute(NOW + 360)
    assert wait_until(lambda: market_store.latest_ts("AAPL") == NOW + 360)
    assert stream.wait_idle()
    day = minutes_in_db(market_store, "AAPL")
    session_open = NOW - 30 * 60
    today = [t for t in day if t >= session_open]
    assert today == list(range(session_open, NOW + 420, 60))
    states = [s.state for s in statuses]
    assert states[:2] == ["connecting", "connected"]
    assert "reconnecting" in states and "error" in states and states[-1] == "connected"
    assert any("connection limit" in s.detail for s in statuses)


def test_prepare_reports_progress(stream, emulator, market_store) -> None:
    seen: list[tuple[str, float, int]] = []
    stream.add_progress_listener(lambda t, f, n: seen.append((t, f, n)))
    stream.prepare("NVDA")
    assert seen and seen[-1][0] == "NVDA" and seen[-1][1] == 1.0
    assert seen[-1][2] == market_store.count("NVDA") == 5 * 390 + 30


def test_gap_backfill_never_reaches_past_the_history_window(stream, emulator, market_store,
                                                            calendar, clock) -> None:
    """A DB whose newest bar is months old: the first live bar fills only the window."""
    old = NOW - 90 * 86400
    old -= old % 60
    market_store.insert_rows([("AAPL", int(m.timestamp()), 1.0, 1.0, 1.0, 1.0, 1)
                              for m in calendar.minutes_between(
                                  from_epoch(old - 3600), from_epoch(old))])
    started(stream)
    stream.subscribe("AAPL")
    assert wait_until(lambda: emulator.subscribed() == {"AAPL"})
    emulator.emit_minute(NOW)
    assert wait_until(lambda: stream.gap_fills == 1)
    assert stream.wait_idle()
    window = int(stream.backfiller.window_start(clock.now()).timestamp())
    assert market_store.bars_between("AAPL", old, window) == []
    assert len(market_store.bars_between("AAPL", window, NOW + 60)) == 5 * 390 + 31


def test_skipped_minute_on_the_stream_is_backfilled(stream, emulator, market_store, clock) -> None:
    started(stream)
    stream.subscribe("SPY")
    assert wait_until(lambda: emulator.subscribed() == {"SPY"})
    emulator.faults.skip_stream.add(("SPY", NOW + 60))
    for m in range(4):
        clock.advance(minutes=1)
        emulator.emit_minute(NOW + 60 * m)
    assert wait_until(lambda: stream.gap_fills >= 1)
    assert stream.wait_idle()
    assert minutes_in_db(market_store, "SPY") == [NOW + 60 * m for m in range(4)]


def test_late_trade_comes_as_an_updated_bar_after_the_half_minute(stream, emulator,
                                                                  market_store, clock) -> None:
    """Docs (real-time-stock-pricing-data, Updated Bars): the bar goes out on time without
    the late trade; just after the next :30 an updated bar ``u`` with the same ``t`` has it."""
    seen = Seen(market_store)
    stream.add_bar_listener(seen)
    started(stream)
    stream.subscribe("GE")
    assert wait_until(lambda: emulator.subscribed() == {"GE"})
    emulator.faults.late.add(("GE", NOW))
    clock.advance(minutes=1)
    emulator.emit_minute(NOW)
    assert wait_until(lambda: len(seen.bars) == 1)
    first = market_store.bars_between("GE", NOW, NOW + 60)[0]
    final = emulator.bar("GE", NOW)
    assert first[4] != final["c"] and first[5] < final["v"]
    clock.advance(seconds=30)
    assert emulator.emit_corrections() == 1
    assert wait_until(lambda: len(seen.bars) == 2)
    assert [b.ts for b in seen.bars] == [NOW, NOW]
    row = market_store.bars_between("GE", NOW, NOW + 60)[0]
    assert (row[4], row[5]) == (final["c"], final["v"])  # now equal to what REST reports
    assert stream.gap_fills == 0 and market_store.count("GE") == 1


def test_updated_bar_replaces_the_stored_one(stream, emulator, market_store) -> None:
    started(stream)
    stream.subscribe("AAPL")
    assert wait_until(lambda: emulator.subscribed() == {"AAPL"})
    emulator.emit_minute(NOW - 60)
    assert wait_until(lambda: market_store.latest_ts("AAPL") == NOW - 60)
    assert emulator.emit_correction("AAPL", NOW - 60, c=999.5, v=123456) == 1
    assert wait_until(lambda: market_store.bars_between("AAPL", NOW - 60, NOW)[0][4] == 999.5)
    assert market_store.bars_between("AAPL", NOW - 60, NOW)[0][5] == 123456
    assert market_store.count("AAPL") == 1


def test_bar_followed_by_a_control_frame_is_stored_without_waiting(stream, emulator,
                                                                   market_store) -> None:
    """A ping (or pong) right behind a bar frame: the reader, seeing more bytes waiting, holds
    the bar to batch it with the next frame; that frame is control, not data, so the bar must
    be stored then and not sit until the next minute's frame (it used to: the last minute of
    a run was missing, issue 11's flaky thin-ticker test)."""
    started(stream)
    stream.subscribe("AAPL")
    assert wait_until(lambda: emulator.subscribed() == {"AAPL"})
    for i, ts in enumerate((NOW - 180, NOW - 120, NOW - 60)):
        b = emulator.bar("AAPL", ts)
        assert b is not None
        emulator.emit_raw([dict(b, T="b", S="AAPL")], ping_after=True)
        assert wait_until(lambda ts=ts: market_store.latest_ts("AAPL") == ts, timeout=2.0), i
    assert stream.connects == 1 and market_store.count("AAPL") == 3


def test_garbage_on_the_wire_is_skipped_not_fatal(stream, emulator, market_store) -> None:
    started(stream)
    stream.subscribe("AAPL")
    assert wait_until(lambda: emulator.subscribed() == {"AAPL"})
    session = next(s for s in emulator.market_sessions if s.authed)
    session.conn.send_text("{not json")
    emulator.emit_raw([{"T": "b", "S": "AAPL", "t": "garbage"}, 42])
    emulator.emit_minute(NOW - 60)
    assert wait_until(lambda: market_store.latest_ts("AAPL") == NOW - 60)
    assert stream.connects == 1


def assert_paced(attempts, pause: float, more: int = 3) -> None:
    """A refused login is retried after ``pause`` s, never in a storm: ``more`` further
    attempts take at least ``more - 1`` whole pauses (the first may have begun before this
    call). A slow machine only makes them slower; a storm takes milliseconds."""
    t0, n = time.monotonic(), attempts()
    wait_until(lambda: attempts() >= n + more, timeout=15 + more * pause)
    took = time.monotonic() - t0
    assert took >= (more - 1) * pause, f"{more} attempts in {took:.2f} s, pause {pause} s"


def test_refused_auth_is_an_error_status_with_paced_retry(stream, emulator) -> None:
    emulator.faults.refuse_auth = True
    stream.start()
    assert wait_until(lambda: stream.status.state == "error")
    assert "refused the API keys" in stream.status.detail
    assert_paced(lambda: emulator.market_auths, FAST["auth_retry"])
    emulator.faults.refuse_auth = False
    assert wait_until(lambda: stream.status.state == "connected")


def test_connection_limit_406_paced_then_recovers(emulator, settings, market_store, calendar,
                                                  clock) -> None:
    other = make_stream(settings, market_store, calendar, clock)
    s = make_stream(settings, market_store, calendar, clock, limit_retry=0.5)
    try:
        started(other)  # another app with the same keys holds the one allowed connection
        s.start()
        assert wait_until(lambda: s.status.state == "error")
        assert "connection limit exceeded (406)" in s.status.detail
        assert_paced(lambda: emulator.market_auths, s.limit_retry)
        other.stop()
        assert wait_until(lambda: s.status.state == "connected", timeout=5)
    finally:
        s.stop()
        other.stop()


def test_silent_connection_is_treated_as_dropped(emulator, settings, market_store, calendar,
                                                 clock) -> None:
    s = make_stream(settings, market_store, calendar, clock, silence_timeout=0.3)
    try:
        started(s)
        s.subscribe("AAPL")
        emulator.faults.silent = True
        assert wait_until(lambda: s.connects >= 2, timeout=5)
        emulator.faults.silent = False
        assert wait_until(lambda: s.status.state == "connected")
        emulator.emit_minute(NOW - 60)
        assert wait_until(lambda: market_store.latest_ts("AAPL") == NOW - 60)
    finally:
        s.stop()


def test_silence_while_closed_is_normal(emulator, settings, market_store, calendar, clock) -> None:
    clock.advance(hours=8)  # 18:00 New York: closed, no bars expected
    s = make_stream(settings, market_store, calendar, clock, silence_timeout=0.2)
    checks = SilenceChecks(s)
    try:
        started(s)
        s.subscribe("AAPL")
        quiet_from = time.monotonic()
        # The marker: silence checks run (and passed) after twice the timeout of quiet.
        nothing_before(lambda: checks.ran_since(quiet_from + 2 * s.silence_timeout, times=3),
                       lambda: checks.raised or s.connects != 1,
                       what="a quiet connection replaced while the market is closed")
        assert s.status.state == "connected"
    finally:
        s.stop()


def test_stop_reports_stopped(stream, emulator) -> None:
    started(stream)
    stream.stop()
    assert stream.status.state == "stopped"
    assert wait_until(lambda: emulator.authed_market_sessions() == 0)


def test_alpaca_py_msgpack_client_gets_bars(emulator: AlpacaEmulator) -> None:
    """The emulator also speaks alpaca-py's msgpack dialect (protocol doc section 1)."""
    from alpaca.data.live import StockDataStream

    got = []

    async def on_bar(b) -> None:
        got.append(b)

    sds = StockDataStream(emulator.key_id, emulator.secret_key, url_override=emulator.stream_url)
    sds.subscribe_bars(on_bar, "AAPL")
    t = threading.Thread(target=sds.run, daemon=True)
    t.start()
    try:
        assert wait_until(lambda: emulator.subscribed() == {"AAPL"})
        emulator.emit_minute(NOW - 60)
        assert wait_until(lambda: got)
        assert got[0].symbol == "AAPL" and int(got[0].timestamp.timestamp()) == NOW - 60
        assert got[0].vwap > 0 and got[0].trade_count > 0
    finally:
        sds.stop()  # its reader thread ends on its own (daemon); joining would wait ~5 s
