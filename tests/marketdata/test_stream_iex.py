"""The market-data stream under real IEX conditions (issue 11, section 2): coalesced gap
backfill for thin tickers, per-symbol subscription refusals, halts, pings, the pre-open
reconnect. AlpacaStream (websocket-client) against the emulator in realism mode."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from app.marketdata.base import TickerStatus
from tests.fakes.emulator_fixtures import SESSION_NOW
from tests.marketdata.test_stream import SilenceChecks, make_stream, started
from tests.waiting import nothing_before, wait_until

NOW = int(SESSION_NOW.timestamp())
THIN = [f"TH{i:02d}" for i in range(20)]


@pytest.fixture
def stream(settings, market_store, calendar, clock):
    s = make_stream(settings, market_store, calendar, clock)
    yield s
    s.stop()


def subscribe_all(stream, emulator, tickers) -> None:
    for t in tickers:
        stream.subscribe(t)
    assert wait_until(lambda: emulator.subscribed() == set(tickers))
    assert wait_until(lambda: all(stream.ticker_status(t).state == "subscribed" for t in tickers))


def test_thin_tickers_gaps_are_one_multi_symbol_request_per_batch(settings, market_store,
                                                                  calendar, clock,
                                                                  emulator) -> None:
    for t in THIN:
        emulator.add_asset(t)
        emulator.illiquid[t] = 0.3  # a trade in ~30% of minutes
    s = make_stream(settings, market_store, calendar, clock, gap_delay=0.3)
    try:
        started(s)
        subscribe_all(s, emulator, THIN)
        emulator.queries.clear()
        for m in range(10):
            clock.advance(minutes=1)
            emulator.emit_minute(NOW + 60 * m)
            time.sleep(0.05)
        assert wait_until(lambda: s.gap_fills >= 1)
        assert s.wait_idle()
        bars_queries = [q for q in emulator.queries if q.startswith("/v2/stocks/bars")]
        assert 1 <= len(bars_queries) <= 4, bars_queries  # not one per ticker or per minute
        assert any(q.count("TH") > 5 for q in bars_queries)  # many symbols in one request
        want = {t: [ts for ts in range(NOW, NOW + 600, 60) if emulator.bar(t, ts)] for t in THIN}
        def stored(t: str) -> list[int]:
            return [r[0] for r in market_store.bars_between(t, NOW, NOW + 600)]

        def complete(t: str) -> bool:  # every bar there is, and no invented one
            return stored(t) == want[t]

        # The last minute's bars may still be on their way through the websocket.
        assert wait_until(lambda: all(complete(t) for t in THIN)), {
            t: (stored(t), want[t]) for t in THIN if not complete(t)}
        # A reconnect asks once (one request) for the minutes since each ticker's last bar;
        # a second one does not chase the minutes that answer showed to be empty.
        for most in (1, 0):
            emulator.queries.clear()
            n = s.connects
            emulator.drop_market_connections()
            # The marker: the new connection's gap requests are queued (``_on_open`` clears
            # the moment of the drop once it has queued them), so wait_idle waits for them.
            assert wait_until(lambda n=n: s.connects > n and s.status.state == "connected"
                              and s._disconnected_at is None)
            assert s.wait_idle()
            asked = [q for q in emulator.queries if q.startswith("/v2/stocks/bars")]
            assert len(asked) <= most, asked
        assert len(s.pending_gaps()) <= len(THIN)  # bounded: one range per ticker
    finally:
        s.stop()


def test_a_bar_lost_inside_another_tickers_range_is_fetched_by_that_batch(
        settings, market_store, calendar, clock, emulator) -> None:
    """One batch asks [earliest start, latest end) for all its tickers and marks that range
    answered for each (issue 11 suspected this of losing bars). It does not: the request
    covers every ticker over the whole range, so a bar lost on the stream for TA inside TB's
    longer range comes back in the same answer, and TA's next gap starts after it."""
    ms = [NOW + 60 * m for m in range(10)]
    for t in ("TA", "TB"):
        emulator.add_asset(t)
    f = emulator.faults
    f.missing |= {("TA", ms[m]) for m in (1, 3, 5, 6, 7, 8)} | {("TB", ms[m]) for m in range(1, 7)}
    f.skip_stream.add(("TA", ms[4]))  # traded, but lost on the stream: only REST has it
    s = make_stream(settings, market_store, calendar, clock, gap_delay=1.0)
    try:
        started(s)
        subscribe_all(s, emulator, ["TA", "TB"])
        emulator.queries.clear()
        for m in range(8):  # TA: bars 0, 2 (gap 1); TB: bars 0, 7 (gap 1-6); one batch
            clock.advance(minutes=1)
            emulator.emit_minute(ms[m])
        assert wait_until(lambda: s.gap_fills >= 1) and s.wait_idle()
        first = [q for q in emulator.queries if q.startswith("/v2/stocks/bars")]
        assert len(first) == 1 and "TA" in first[0] and "TB" in first[0], first
        # TA's minute 4 came back in that answer though TA's own gap was minute 1 only.
        assert [r[0] for r in market_store.bars_between("TA", NOW, NOW + 600)] == [
            ms[0], ms[2], ms[4]]
        emulator.queries.clear()
        for m in (8, 9):  # TA's next stream bar (9): a gap 3-8, answered up to 7 already
            clock.advance(minutes=1)
            emulator.emit_minute(ms[m])
        assert wait_until(lambda: market_store.latest_ts("TA") == ms[9])
        assert wait_until(lambda: s.gap_fills >= 2, timeout=3) and s.wait_idle()
        later = [q for q in emulator.queries if q.startswith("/v2/stocks/bars")]
        assert len(later) == 1 and "start=2024-03-05T15:07:00" in later[0], later
        assert [r[0] for r in market_store.bars_between("TA", NOW, NOW + 600)] == [
            ms[0], ms[2], ms[4], ms[9]]
    finally:
        s.stop()


def test_a_bar_lost_before_the_first_one_received_is_fetched(settings, market_store, calendar,
                                                             clock, emulator) -> None:
    """A ticker with no stored history (nothing to compare the first bar with): its first
    bar lost on the stream is still found, counting from the minute it was subscribed in
    (bench_gaps lost 1 of 707 bars this way)."""
    emulator.add_asset("TC")
    emulator.faults.missing.add(("TC", NOW + 60))
    emulator.faults.skip_stream.add(("TC", NOW))
    s = make_stream(settings, market_store, calendar, clock, gap_delay=0.0)
    try:
        started(s)
        subscribe_all(s, emulator, ["TC"])
        for m in range(3):
            clock.advance(minutes=1)
            emulator.emit_minute(NOW + 60 * m)
        assert wait_until(lambda: market_store.latest_ts("TC") == NOW + 120)
        assert wait_until(lambda: s.gap_fills >= 1) and s.wait_idle()
        assert [r[0] for r in market_store.bars_between("TC", 0, 2**40)] == [NOW, NOW + 120]
    finally:
        s.stop()


def test_symbol_limit_405_refuses_that_symbol_only(stream, emulator, market_store) -> None:
    emulator.faults.symbol_limit = 2
    statuses: list[TickerStatus] = []
    stream.add_ticker_status_listener(statuses.append)
    started(stream)
    subscribe_all(stream, emulator, ["AAPL", "MSFT"])
    stream.subscribe("NVDA")
    assert wait_until(lambda: stream.ticker_status("NVDA").state == "refused")
    assert "symbol limit" in stream.ticker_status("NVDA").detail
    assert "405" in stream.ticker_status("NVDA").detail
    assert emulator.subscribed() == {"AAPL", "MSFT"} and stream.connects == 1
    emulator.emit_minute(NOW - 60)
    assert wait_until(lambda: market_store.latest_ts("MSFT") == NOW - 60)
    assert any(x.ticker == "NVDA" and x.state == "refused" for x in statuses)
    # After a reconnect the whole set goes out in one message: still only NVDA refused.
    stream.unsubscribe("NVDA")
    stream.subscribe("NVDA")
    emulator.drop_market_connections()
    assert wait_until(lambda: stream.connects >= 2 and stream.status.state == "connected")
    assert wait_until(lambda: stream.ticker_status("NVDA").state == "refused")
    assert wait_until(lambda: emulator.subscribed() == {"AAPL", "MSFT"})
    assert stream.ticker_status("AAPL").state == "subscribed"


def test_410_for_the_statuses_channel_drops_that_channel_only(stream, emulator) -> None:
    emulator.faults.invalid_channels = {"statuses"}
    started(stream)
    subscribe_all(stream, emulator, ["AAPL", "GE"])
    assert stream.connects == 1 and not stream._statuses_ok


def test_410_for_bars_refuses_the_symbol_and_keeps_the_connection(stream, emulator) -> None:
    started(stream)
    subscribe_all(stream, emulator, ["AAPL"])
    emulator.faults.invalid_channels = {"bars"}
    stream.subscribe("GE")
    assert wait_until(lambda: stream.ticker_status("GE").state == "refused")
    assert "410" in stream.ticker_status("GE").detail
    assert stream.status.state == "connected" and stream.connects == 1


@pytest.mark.parametrize("luld", [False, True])
def test_halt_and_resume_are_known_per_ticker(stream, emulator, luld) -> None:
    started(stream)
    subscribe_all(stream, emulator, ["AAPL", "MSFT"])
    assert emulator.halt("AAPL", luld=luld) == 1
    assert wait_until(lambda: stream.is_halted("AAPL"))
    assert not stream.is_halted("MSFT")
    reason = stream.ticker_status("AAPL").halt_reason
    assert ("Volatility" in reason) if luld else ("Trading Halt" in reason)
    emulator.resume("AAPL")
    assert wait_until(lambda: not stream.is_halted("AAPL"))


def test_missing_pong_is_a_dead_connection(settings, market_store, calendar, clock,
                                           emulator) -> None:
    s = make_stream(settings, market_store, calendar, clock, ping_interval=0.1,
                    pong_timeout=0.3)
    try:
        started(s)
        # A ping goes out only once the last one's pong came back (else, after
        # pong_timeout, the connection is dropped): five pings on one connection, four pongs.
        nothing_before(lambda: s.pings_sent >= 5, lambda: s.connects != 1,
                       what="a connection whose pongs come back replaced")
        emulator.faults.no_pong = True
        assert wait_until(lambda: s.connects >= 2, timeout=5)
    finally:
        s.stop()


def test_quiet_night_connection_is_replaced_before_the_open(settings, market_store, calendar,
                                                            clock, emulator) -> None:
    clock.advance(hours=8)  # 18:00 New York: connected all evening, nothing arrives
    s = make_stream(settings, market_store, calendar, clock, preopen_reconnect=300.0)
    checks = SilenceChecks(s)  # the check that replaces a quiet connection: the markers
    try:
        started(s)
        s.subscribe("AAPL")
        t = time.monotonic()
        nothing_before(lambda: checks.ran_since(t, times=2),
                       lambda: checks.raised or s.connects != 1,
                       what="replaced in the evening, long before the pre-open window")
        nxt = calendar.next_open(clock.now())
        clock.set(nxt - timedelta(minutes=4))
        assert wait_until(lambda: s.connects == 2 and s.status.state == "connected", timeout=5)
        t = time.monotonic()
        n = len(checks.raised)
        nothing_before(lambda: checks.ran_since(t, times=3),
                       lambda: len(checks.raised) != n or s.connects != 2,
                       what="the fresh connection replaced again")  # once, not a loop
    finally:
        s.stop()
