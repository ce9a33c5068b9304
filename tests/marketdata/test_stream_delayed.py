"""The ``delayed_sip`` feed (issue 11): a free plan sees SIP bars 15 minutes late.

Alpaca: "v2/delayed_sip is a 15-minute delayed SIP feed" (docs.alpaca.markets/docs/
real-time-stock-pricing-data); historical SIP newer than 15 minutes is refused with 403
"subscription does not permit querying recent SIP data" (docs.alpaca.markets/docs/
market-data-faq). The emulator's ``/v2/delayed_sip`` session gets a minute's bar only once it
is 15 minutes old. The app must know which minutes are final (``watermark``) and must take the
delay neither for a gap nor for a dead stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app.clock import ManualClock
from tests.fakes.emulator_fixtures import SESSION_NOW, make_settings
from tests.marketdata.test_stream import make_stream, minutes_in_db, started
from tests.waiting import nothing_before, wait_until

OPEN = datetime(2024, 3, 5, 14, 30, tzinfo=UTC)  # 09:30 New York (EST)
NOW = int(SESSION_NOW.timestamp())  # 10:00 New York


def delayed_settings(emulator, tmp_path, feed: str = "delayed_sip"):
    return make_settings(emulator, tmp_path, **{
        "alpaca.feed": feed, "alpaca.stream_url": emulator.stream_url.replace("/iex", f"/{feed}")})


@pytest.fixture
def delayed(emulator, market_store, calendar, clock, tmp_path) -> Iterator:
    made = []

    def make(feed: str = "delayed_sip", **kw):
        s = make_stream(delayed_settings(emulator, tmp_path, feed), market_store, calendar,
                        clock, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.mark.parametrize("feed", ["delayed_sip", "iex"])
def test_the_first_15_minutes_of_a_delayed_session_are_not_a_dead_stream(
        delayed, emulator, clock: ManualClock, feed) -> None:
    clock.set(OPEN + timedelta(minutes=2))  # open for 2 min; the delayed feed shows 09:17
    s = started(delayed(feed, silence_timeout=0.3, ping_interval=0.05))
    s.subscribe("AAPL")
    assert wait_until(lambda: emulator.subscribed() == {"AAPL"})
    if feed == "iex":  # the control: a live feed silent while open is replaced
        assert wait_until(lambda: emulator.market_auths >= 2, timeout=10)
        return
    assert s.watermark() == int((OPEN + timedelta(minutes=2)).timestamp()) - 15 * 60
    base = s.pings_sent
    # The loop (pings every 0.05 s, silence checked each second) runs for 1.5 s+: no reconnect.
    nothing_before(lambda: s.pings_sent >= base + 30, lambda: emulator.market_auths > 1,
                   timeout=20, what="a reconnect of the delayed stream")
    assert s.status.state == "connected"


def test_delayed_bars_make_no_gap_and_a_reconnect_marks_nothing_past_the_watermark(
        delayed, emulator, market_store, clock: ManualClock) -> None:
    s = started(delayed())
    s.subscribe("AAPL")
    assert wait_until(lambda: emulator.subscribed() == {"AAPL"})
    final = s.watermark()
    assert final == NOW - 15 * 60  # 09:45: minutes before it are final
    assert emulator.emit_minute(NOW - 60) == 0  # the feed never sends a fresh minute
    assert emulator.emit_minute(final - 60) == 1  # 09:44, just final
    assert wait_until(lambda: minutes_in_db(market_store, "AAPL") == [final - 60])
    assert s.pending_gaps() == {} and s.gap_fills == 0  # the 15 minutes are no gap

    # Dropped; back 5 minutes later: [09:45, 09:50) is fetched (SIP minus 15 minutes, no
    # 403), and nothing after the new watermark is taken as answered.
    clock.advance(minutes=5)  # first: the reconnect must not come before the clock moved
    emulator.drop_market_connections()
    assert wait_until(lambda: s.gap_fills == 1, timeout=10)
    assert s.wait_idle()
    assert minutes_in_db(market_store, "AAPL") == list(range(final - 60, final + 300, 60))
    assert s.watermark() == final + 300

    # Later the stream loses 09:51 between 09:50 and 09:52: that gap is fetched, not skipped
    # as "answered" (it was, before: the reconnect's batch marked up to 10:05 as answered).
    clock.advance(minutes=3)
    emulator.faults.skip_stream.add(("AAPL", final + 360))
    for ts in (final + 300, final + 360, final + 420):
        emulator.emit_minute(ts)
    assert wait_until(lambda: s.gap_fills == 2, timeout=10)
    assert s.wait_idle()
    assert minutes_in_db(market_store, "AAPL") == list(range(final - 60, final + 480, 60))
    assert not any("feed=iex" in q for q in emulator.queries if "stocks/bars" in q)


def test_a_new_ticker_on_the_delayed_feed_is_watched_from_the_watermark(
        delayed, emulator, market_store, clock: ManualClock) -> None:
    """No stored bar: the gap reference is the watermark, not "now" (the delayed bars are all
    older than now, so a bar lost among the first ones would never be missed)."""
    s = started(delayed())
    s.subscribe("MSFT")
    assert wait_until(lambda: emulator.subscribed() == {"MSFT"})
    final = s.watermark()
    emulator.faults.skip_stream.add(("MSFT", final))
    emulator.emit_minute(final - 60)
    clock.advance(minutes=2)
    emulator.emit_minute(final)
    emulator.emit_minute(final + 60)
    assert wait_until(lambda: s.gap_fills == 1, timeout=10)
    assert s.wait_idle()
    assert minutes_in_db(market_store, "MSFT") == [final - 60, final, final + 60]


def test_the_card_measures_a_delayed_feed_from_its_watermark(
        emulator, system_store, market_store, calendar, clock: ManualClock, tmp_path) -> None:
    """The engine asks the feed's delay: on delayed_sip the newest bar is 15+ minutes old by
    nature, and the algorithm trades on it instead of holding with "no bar for 16 min"."""
    from app.broker.alpaca import AlpacaBroker
    from app.engine.facade import Engine
    from app.marketdata.backfill import Backfiller
    from app.marketdata.stream import AlpacaStream
    from tests.engine.alpaca.test_engine_integration import BROKER_FAST, PLUGINS, STREAM_FAST

    settings = delayed_settings(emulator, tmp_path)
    broker = AlpacaBroker.from_settings(settings, **BROKER_FAST)
    feed = AlpacaStream(settings, market_store, calendar, clock=clock,
                        backfiller=Backfiller(settings, market_store, calendar, clock=clock,
                                              rate_limit_wait=0.01), **STREAM_FAST)
    e = Engine(mode="paper", system=system_store, market=market_store, broker=broker, feed=feed,
               clock=clock, calendar=calendar, plugin_dirs=[PLUGINS])
    try:
        e.start()
        algo = e.create_algorithm("scripted", "MSFT", 5_000.0)
        assert wait_until(lambda: emulator.subscribed() == {"MSFT"})
        assert market_store.latest_ts("MSFT") == NOW - 16 * 60  # history: SIP minus 15 min
        minute = SESSION_NOW + timedelta(minutes=1)
        clock.set(minute + timedelta(seconds=2))
        assert emulator.emit_minute(NOW - 15 * 60) == 1  # 09:45, final at 10:01
        assert wait_until(lambda: market_store.latest_ts("MSFT") == NOW - 15 * 60)
        r = e.run_tick(minute)
        assert algo not in r.errors, r.errors
        # Two delayed minutes later with no bar: the card says so, counted from the watermark.
        later = minute + timedelta(minutes=3)
        clock.set(later + timedelta(seconds=2))
        r = e.run_tick(later)
        assert r.errors[algo] == "no bar for 4 min"  # 09:45 .. 09:49
    finally:
        e.close()
