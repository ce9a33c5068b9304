"""Backfiller through the real alpaca-py StockHistoricalDataClient on the emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.marketdata.backfill import Backfiller, BackfillError
from tests.fakes.bars import bar_values
from tests.fakes.emulator_fixtures import make_settings


def expected_minutes(calendar, start: datetime, end: datetime) -> list[int]:
    return [int(m.timestamp()) for m in calendar.minutes_between(start, end)]


def make(settings, market_store, calendar, clock, **kw) -> Backfiller:
    kw.setdefault("rate_limit_wait", 0.01)
    kw.setdefault("error_wait", 0.01)
    return Backfiller(settings, market_store, calendar, clock=clock, **kw)


def test_prepare_fills_the_window_regular_session_only(settings, market_store, calendar, clock,
                                                       emulator) -> None:
    bf = make(settings, market_store, calendar, clock)
    stored = bf.prepare("AAPL")
    start = bf.window_start(clock.now())
    want = expected_minutes(calendar, start, clock.now())
    # 5 whole sessions before 2024-03-05 plus today's first 30 minutes.
    assert len(want) == 5 * 390 + 30
    got = [r[0] for r in market_store.bars_between("AAPL", 0, 2**40)]
    assert got == want and stored == len(want)
    ts, o, h, low, c, v = market_store.bars_between("AAPL", want[7], want[7] + 60)[0]
    eo, eh, el, ec, ev, _, _ = bar_values("AAPL", want[7])
    assert (o, h, low, c, v) == (eo, eh, el, ec, ev)


def test_prepare_is_idempotent_and_only_fetches_whats_new(settings, market_store, calendar,
                                                          clock, emulator) -> None:
    bf = make(settings, market_store, calendar, clock)
    bf.prepare("MSFT")
    n1, req1 = market_store.count("MSFT"), bf.requests
    bf.prepare("MSFT")
    assert market_store.count("MSFT") == n1
    clock.advance(minutes=10)
    emulator.requests.clear()
    bf.prepare("MSFT")
    assert market_store.count("MSFT") == n1 + 10
    assert bf.requests == req1 + 2
    assert len([r for r in emulator.requests if r[1] == "/v2/stocks/bars"]) == 1


def test_all_pages_followed(settings, market_store, calendar, clock, emulator) -> None:
    """20 days of extended-hours bars is > 10,000 rows: several pages of alpaca-py paging."""
    bf = make(settings, market_store, calendar, clock, chunk_days=40)
    start, end = clock.now() - timedelta(days=20), clock.now()
    bf.backfill_range("NVDA", start, end)
    pages = [r for r in emulator.requests if r[1] == "/v2/stocks/bars"]
    assert len(pages) >= 2
    assert market_store.count("NVDA") == len(expected_minutes(calendar, start, end))


def test_missing_minutes_stay_missing(settings, market_store, calendar, clock, emulator) -> None:
    """A minute without trades has no bar at Alpaca (IEX): nothing is invented."""
    gone = int(datetime(2024, 3, 4, 15, 0, tzinfo=UTC).timestamp())
    emulator.faults.missing.add(("AAPL", gone))
    bf = make(settings, market_store, calendar, clock)
    bf.backfill_range("AAPL", datetime(2024, 3, 4, 14, 30, tzinfo=UTC),
                      datetime(2024, 3, 4, 15, 30, tzinfo=UTC))
    got = [r[0] for r in market_store.bars_between("AAPL", 0, 2**40)]
    assert len(got) == 59 and gone not in got


def test_rate_limit_is_waited_out(settings, market_store, calendar, clock, emulator) -> None:
    emulator.faults.fail_status, emulator.faults.fail_count = 429, 3
    emulator.faults.fail_prefix = "/v2/stocks"
    bf = make(settings, market_store, calendar, clock)
    assert bf.prepare("AAPL") == 5 * 390 + 30
    assert emulator.faults.fail_count == 0


def test_server_errors_retried_then_reported(settings, market_store, calendar, clock,
                                             emulator) -> None:
    emulator.faults.fail_status, emulator.faults.fail_count = 500, 2
    emulator.faults.fail_prefix = "/v2/stocks"
    bf = make(settings, market_store, calendar, clock, max_attempts=3)
    assert bf.prepare("AAPL") > 0
    emulator.faults.fail_count = 100
    with pytest.raises(BackfillError, match="giving up after 3 attempts"):
        bf.backfill_range("GE", clock.now() - timedelta(hours=1), clock.now())


def test_refused_keys_give_a_clear_error(emulator, market_store, calendar, clock, tmp_path) -> None:
    s = make_settings(emulator, tmp_path, **{"alpaca.secret_key": "wrong"})
    bf = make(s, market_store, calendar, clock)
    # The data API answers bad keys with 403 (docs.alpaca.markets/docs/market-data-faq).
    with pytest.raises(BackfillError, match=r"HTTP 403: forbidden"):
        bf.prepare("AAPL")
    assert market_store.count() == 0


def test_progress_reported_per_chunk(settings, market_store, calendar, clock, emulator) -> None:
    seen: list[tuple[str, float, int]] = []
    bf = make(settings, market_store, calendar, clock, chunk_days=2)
    bf.backfill_range("SPY", clock.now() - timedelta(days=10), clock.now(),
                      progress=lambda t, f, n: seen.append((t, f, n)))
    assert len(seen) == 5
    assert [s[1] for s in seen] == sorted(s[1] for s in seen) and seen[-1][1] == 1.0
    assert seen[-1][2] == market_store.count("SPY")


class FaultPerCall:
    """The real alpaca-py data client, with the emulator's fault switch set before each call
    from a schedule (0: none): the Backfiller fetches the next chunk while it stores one, so
    faults set from its progress reports would race with that fetch."""

    def __init__(self, settings, emulator, schedule: list[int]) -> None:
        from app.broker.alpaca_clients import data_client

        self.real, self.emulator, self.schedule = data_client(settings), emulator, schedule

    def get_stock_bars(self, req):
        status = self.schedule.pop(0) if self.schedule else 0
        if status:
            f = self.emulator.faults
            f.fail_status, f.fail_count, f.fail_prefix = status, 1, "/v2/stocks"
        return self.real.get_stock_bars(req)


def test_429s_then_503s_then_data_through_the_one_retry_policy(settings, market_store, calendar,
                                                                 clock, emulator) -> None:
    """Issue 10: backfill retries on app/broker/retry.py. The first chunk meets two 429s, the
    second two 503s; both end with their data."""
    client = FaultPerCall(settings, emulator, [429, 429, 0, 503, 503, 0])
    bf = make(settings, market_store, calendar, clock, chunk_days=3, client=client)
    start, end = clock.now() - timedelta(days=6), clock.now()
    stored = bf.backfill_range("MSFT", start, end)
    assert stored == len(expected_minutes(calendar, start, end)) == market_store.count("MSFT")
    assert client.schedule == [] and emulator.faults.fail_count == 0
    assert bf.requests == 6  # each chunk: two refused tries, then its data


def test_a_callers_retry_scope_caps_the_backfills_tries(settings, market_store, calendar, clock,
                                                         emulator) -> None:
    from app.broker import retry

    emulator.faults.fail_status, emulator.faults.fail_count = 503, 5
    emulator.faults.fail_prefix = "/v2/stocks"
    bf = make(settings, market_store, calendar, clock)
    with retry.scope(attempts=1), pytest.raises(BackfillError, match="giving up after 1 attempt"):
        bf.backfill_range("GE", clock.now() - timedelta(hours=1), clock.now())
    assert bf.requests == 1 and emulator.faults.fail_count == 4


def test_bar_epoch_agrees_with_the_iso_parser() -> None:
    from app.marketdata.backfill import bar_epoch
    from db.timeutil import to_epoch

    for s in ("2024-01-02T14:30:00Z", "2024-02-29T23:59:00Z", "2024-03-10T07:05:59Z",
              "2024-01-02T14:30:00+00:00", "2024-01-02T09:30:00-05:00", "2024-01-02T14:30:00.5Z"):
        assert bar_epoch(s) == to_epoch(s), s
    for bad in ("2024-01-02T24:30:00Z", "2024-13-02T14:30:00Z", "2024-01-02T1 :30:00Z"):
        with pytest.raises(ValueError, match=bad):
            bar_epoch(bad)


def test_a_failure_in_a_later_chunk_keeps_the_stored_ones(settings, market_store, calendar,
                                                          clock, emulator) -> None:
    """Chunks are fetched one ahead of the store: a refusal of the second chunk still leaves
    the first stored, and is reported."""
    client = FaultPerCall(settings, emulator, [0, 400])
    bf = make(settings, market_store, calendar, clock, chunk_days=3, client=client)
    start = clock.now() - timedelta(days=6)
    with pytest.raises(BackfillError, match="HTTP 400"):
        bf.backfill_range("SPY", start, clock.now())
    first = expected_minutes(calendar, start, start + timedelta(days=3))
    assert market_store.count("SPY") == len(first) > 0


def test_chunks_cut_at_their_bar_limit_end_on_page_boundaries(settings, market_store, calendar,
                                                              clock, emulator) -> None:
    """Issue 15: a chunk asks for ``chunk_bars`` bars; one that gets them all ends there and the
    next starts after its last bar, so every request but the last brings a full page (chunks
    of whole days each ended with a part page) and no bar is fetched twice or missed."""
    from tests.fakes.bars import extended_minutes

    seen: list[tuple[str, float, int]] = []
    bf = make(settings, market_store, calendar, clock, chunk_bars=1000, chunk_days=365)
    start, end = clock.now() - timedelta(days=6), clock.now()
    served = len(extended_minutes(calendar, int(start.timestamp()), int(end.timestamp())))
    emulator.requests.clear()
    stored = bf.backfill_range("AMD", start, end, progress=lambda t, f, n: seen.append((t, f, n)))
    assert served > 3000 and served % 1000 != 0
    pages = [r for r in emulator.requests if r[1] == "/v2/stocks/bars"]
    assert len(pages) == bf.requests == served // 1000 + 1
    want = expected_minutes(calendar, start, end)
    assert stored == len(want) == market_store.count("AMD")
    assert [r[0] for r in market_store.bars_between("AMD", 0, 2**40)] == want
    fractions = [f for _, f, _ in seen]
    assert len(seen) == len(pages) and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert 0 < fractions[0] < 1.0 and seen[-1][2] == stored


def test_session_bars_keeps_what_the_store_keeps(calendar) -> None:
    """The storing thread parses only the regular-session slice of a chunk's bars; that slice
    is exactly the bars the store's session filter keeps, and bars it cannot slice safely (a
    ``t`` in another form, out of order) are all handed on for the store to filter."""
    from app.marketdata.backfill import bar_epoch, session_bars
    from tests.fakes.bars import extended_minutes

    t0 = int(datetime(2024, 3, 1, tzinfo=UTC).timestamp())  # a Friday; DST starts on the 10th
    iso = [datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
           for ts in extended_minutes(calendar, t0, t0 + 14 * 86400)]
    bars = [{"t": t, "o": 1.0} for t in iso]
    kept = session_bars(calendar, bars)
    assert kept == [b for b in bars if calendar.is_open_epoch(bar_epoch(b["t"]))]
    assert 0 < len(kept) < len(bars) and len(kept) % 390 == 0
    assert session_bars(calendar, []) == []
    odd = [*bars[:5], {"t": "2024-03-04T14:31:00+00:00"}, *bars[5:]]
    assert session_bars(calendar, odd) == odd
    shuffled = [bars[1], bars[0], *bars[2:]]
    assert session_bars(calendar, shuffled) == shuffled
