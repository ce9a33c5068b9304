"""Historical minute bars from Alpaca's data REST API into the market DB.

Used when an algorithm is created (``prepare``), at start-up and after a stream gap
(``backfill_range``). Requests go through alpaca-py's ``StockHistoricalDataClient`` (which
follows every ``next_page_token``), IEX by default, in chunks of at most ``chunk_bars`` bars
(whole pages) and ``chunk_days`` days, so a long backfill reports progress and a failure loses
at most one chunk. Only regular-session bars are kept (the store filters them; the storing
thread parses only those); storing is an upsert, so running it twice changes nothing.
A 429 is waited out (``X-RateLimit-Reset`` when sent) and the chunk retried; a 5xx or a network
error is retried with a doubling pause. The retries go through the broker's one retry policy
(app/broker/retry.py: a bounded number of tries, none nested inside another retried call, a
caller's ``scope`` caps them).
"""

from __future__ import annotations

import bisect
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from app.broker import retry
from app.broker.alpaca_clients import (
    api_error_message,
    api_error_status,
    data_client,
    historical_feed,
    refusal_text,
    retry_after,
)
from app.clock import Clock, WallClock
from app.config import Settings
from db.calendar import MarketCalendar
from db.market import MarketStore, check_ticker
from db.timeutil import from_epoch, iso_z, require_aware, to_epoch

logger = logging.getLogger(__name__)

# 429s waited out before giving up (at the default 30 s each, about an hour of them).
RATE_LIMITED_TRIES = 120

# Bars a backfill chunk asks for: two of Alpaca's pages (10,000 bars each, the most a page
# holds), about 21 sessions of a liquid ticker's extended hours. A chunk that reaches it ends
# on a page boundary and the next starts after its last bar, so a year takes the same pages
# as one request for all of it; chunks of whole days each ended with a part page (29
# requests for a year's 25 pages' worth, issue 15).
CHUNK_BARS = 2 * 10_000

# One of Alpaca's bars as JSON gives it ({"t": "2024-01-02T14:30:00Z", "o": ..., "v": ...});
# one as the store takes it: (ticker, ts, o, h, l, c, v).
Bar = dict[str, Any]
Row = tuple[Any, ...]

# progress(ticker, fraction 0..1, bars stored so far)
ProgressCallback = Callable[[str, float, int], None]


# Epoch seconds of each UTC day seen in bar timestamps ("2024-01-02" -> 1704153600), bounded;
# seconds into the day of each whole minute ("14:30:00" -> 52200).
_DAY_EPOCH: dict[str, int] = {}
_DAY_EPOCH_MAX = 8192
_MINUTE_OF_DAY = {f"{h:02d}:{m:02d}:00": h * 3600 + m * 60 for h in range(24) for m in range(60)}


def bar_epoch(t: object) -> int:
    """Epoch seconds of a bar's ``t``. Alpaca sends ``2024-01-02T14:30:00Z``: the day's epoch
    (one parse per day) plus the minute's offset (a dict hit), several times faster than a full
    ISO parse, which was the backfill's largest cost after the network (a year is 240,000
    bars with extended hours). Anything else (an offset, seconds, fractions) takes
    ``to_epoch``."""
    if type(t) is str and len(t) == 20 and t[10] == "T" and t[19] == "Z":
        minute = _MINUTE_OF_DAY.get(t[11:19])
        if minute is not None:
            day = _DAY_EPOCH.get(t[:10])
            if day is None:
                if len(_DAY_EPOCH) >= _DAY_EPOCH_MAX:
                    _DAY_EPOCH.clear()
                day = _DAY_EPOCH[t[:10]] = to_epoch(t) - minute  # a bad date: its error
            return day + minute
    return to_epoch(t)  # type: ignore[arg-type]  # to_epoch says what is wrong with it


def bars_to_rows(ticker: str, bars: list[Bar]) -> list[Row]:
    """Alpaca's bar dicts as (ticker, ts, o, h, l, c, v) rows."""
    return [(ticker, bar_epoch(b["t"]), float(b["o"]), float(b["h"]), float(b["l"]),
             float(b["c"]), int(b.get("v") or 0)) for b in bars]


def session_bars(calendar: MarketCalendar, bars: list[Bar]) -> list[Bar]:
    """The bars of ``bars`` (Alpaca's, ascending) inside a regular session, or all of them.

    Alpaca serves extended hours too (60% of a liquid ticker's bars). Their ``t`` strings
    (``2024-01-02T14:30:00Z``) sort as their times do, so each session's bars are one slice,
    found by bisection, and only those are parsed: parsing every bar and letting the store
    drop the rest took most of the storing thread's time. When any ``t`` is in another form, or
    the bars are out of order, all of them are returned; the store filters either way."""
    if not bars:
        return bars
    keys = [b["t"] for b in bars]
    if not (all(type(k) is str and len(k) == 20 and k[10] == "T" and k[19] == "Z"
                for k in keys) and keys == sorted(keys)):
        return bars
    first = from_epoch(bar_epoch(keys[0])).date() - timedelta(days=1)
    last = from_epoch(bar_epoch(keys[-1])).date() + timedelta(days=1)
    out: list[Bar] = []
    i = 0
    for s in calendar.sessions_between(first, last):
        i = bisect.bisect_left(keys, iso_z(s.open), i)
        j = bisect.bisect_left(keys, iso_z(s.close), i)
        out += bars[i:j]
        i = j
    return out


class BackfillError(RuntimeError):
    """History could not be fetched; the message says why (keys, plan, network)."""


class Backfiller:
    def __init__(self, settings: Settings, market: MarketStore, calendar: MarketCalendar, *,
                 clock: Clock | None = None, client: object | None = None,
                 chunk_days: int = 60, chunk_bars: int = CHUNK_BARS,
                 rate_limit_wait: float = 30.0,
                 rate_limit_min: float = 1.0,
                 error_wait: float = 2.0, max_attempts: int = 8) -> None:
        self.settings = settings
        self.market = market
        self.calendar = calendar
        self.clock = clock or WallClock()
        self._client = client
        self.chunk_days = chunk_days
        self.chunk_bars = chunk_bars
        self.rate_limit_wait = rate_limit_wait
        self.rate_limit_min = rate_limit_min
        # delayed_sip (a stream feed) is fetched as sip without its newest 15 minutes.
        self.feed, self.feed_delay = historical_feed(settings.alpaca.feed)
        self.error_wait = error_wait
        self.max_attempts = max_attempts
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self.requests = 0

    @property
    def client(self) -> object:
        if self._client is None:
            self._client = data_client(self.settings)
        return self._client

    def _lock_for(self, ticker: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(ticker, threading.Lock())

    # --- what to fetch ----------------------------------------------------------------------
    def window_start(self, now: datetime) -> datetime:
        """Open of the oldest session plugins may read: ``backfill_days`` completed sessions
        before ``now`` (plus the session in progress, if any)."""
        sessions = self.calendar.sessions_before(now, self.settings.alpaca.backfill_days)
        if sessions:
            return sessions[0].open
        return self.calendar.current_or_next_session(now).open

    def prepare(self, ticker: str, progress: ProgressCallback | None = None) -> int:
        """Make the market DB hold ``ticker``'s history window up to now; return bars stored.

        If the window's first session is already in the DB, only the part after the newest
        stored bar is fetched (gaps inside are the stream's job, see ``backfill_range``)."""
        check_ticker(ticker)
        now = require_aware(self.clock.now())
        start = self.window_start(now)
        first = self.calendar.current_or_next_session(start)
        have_start = self.market.bars_between(ticker, int(first.open.timestamp()),
                                              int(first.close.timestamp()))
        latest = self.market.latest_ts(ticker)
        if have_start and latest is not None:
            start = max(start, from_epoch(latest))  # re-fetch the newest minute: it may be late
        return self.backfill_range(ticker, start, now, progress)

    # --- fetching ---------------------------------------------------------------------------
    def backfill_range(self, ticker: str, start: datetime, end: datetime,
                       progress: ProgressCallback | None = None) -> int:
        """Fetch and store ``ticker``'s minute bars in [start, end); return bars stored.

        A chunk is [a, a + chunk_days) cut at ``chunk_bars`` bars: one that reaches them ends
        on a page boundary, and the next starts after its last bar."""
        check_ticker(ticker)
        start, end = require_aware(start), require_aware(end)
        if end <= start:
            return 0
        total_s = (end - start).total_seconds()
        stored = 0
        with self._lock_for(ticker), ThreadPoolExecutor(
                1, thread_name_prefix=f"backfill-{ticker}") as pool:
            # The next chunk is fetched while this one is parsed and stored: the wait for
            # Alpaca's pages hides that work. The fetching thread only fetches (the pages'
            # JSON), so the next request leaves as soon as a chunk is in; it never opens a DB
            # and runs in a copy of this thread's context (a caller's retry scope applies
            # there too).
            def fetch(a: datetime) -> tuple[datetime, Future[list[Bar]]]:
                b = min(end, a + timedelta(days=self.chunk_days))
                ctx = contextvars.copy_context()
                return b, pool.submit(lambda: ctx.run(self._fetch_chunk, ticker, a, b))

            t0 = time.monotonic()
            ahead: Future[list[Bar]] | None
            window_end, ahead = fetch(start)
            try:
                while ahead is not None:
                    bars, done_to = ahead.result(), window_end
                    if len(bars) >= self.chunk_bars:  # cut at the limit: more in the window
                        done_to = from_epoch(bar_epoch(bars[-1]["t"]) + 1)
                    ahead = None
                    if done_to < end:
                        window_end, ahead = fetch(done_to)
                    stored += self.market.insert_rows(
                        bars_to_rows(ticker, session_bars(self.calendar, bars)))
                    if progress is not None:
                        done = (done_to - start).total_seconds() / total_s
                        try:
                            progress(ticker, min(1.0, done), stored)
                        except Exception:
                            logger.exception("backfill progress callback failed")
            finally:
                if ahead is not None:  # a failed store: the chunk fetched ahead is not needed
                    ahead.cancel()
            logger.info("backfill %s %s..%s: %d regular-session bars in %.1f s", ticker,
                        start.isoformat(), end.isoformat(), stored, time.monotonic() - t0)
        return stored

    def backfill_many(self, tickers: list[str], start: datetime, end: datetime) -> dict[str, int]:
        """Fetch and store the minute bars of several tickers in [start, end) with ONE request
        (plus its pages): ``/v2/stocks/bars`` takes a symbol list. Returns bars stored per
        ticker (0 for a ticker Alpaca has no bar for: on IEX a quiet minute has none)."""
        for t in tickers:
            check_ticker(t)
        start, end = require_aware(start), require_aware(end)
        if end <= start or not tickers:
            return {t: 0 for t in tickers}
        rows = self._fetch(sorted(set(tickers)), start, end)
        out = {t: 0 for t in tickers}
        for t, rs in rows.items():
            out[t] = self.market.insert_rows(rs)
        return out

    def fetch_rows(self, tickers: list[str], start: datetime,
                   end: datetime) -> dict[str, list[Row]]:
        """(ticker, ts, o, h, l, c, v) rows of several tickers in [start, end), every page, 429s
        waited out; not stored (``autotrader data fetch`` stores them, or writes CSVs)."""
        for t in tickers:
            check_ticker(t)
        return self._fetch(sorted(set(tickers)), require_aware(start), require_aware(end))

    def _clamp_end(self, end: datetime) -> datetime:
        if not self.feed_delay:
            return end
        horizon = self.clock.now() - timedelta(seconds=self.feed_delay)
        return min(end, horizon)

    def _fetch(self, tickers: str | list[str], start: datetime,
               end: datetime) -> dict[str, list[Row]]:
        """(ticker, ts, o, h, l, c, v) rows per ticker in [start, end), every page."""
        raw = self._fetch_raw(tickers, start, end)
        return {t: bars_to_rows(t, bars) for t, bars in raw.items()}

    def _fetch_chunk(self, ticker: str, start: datetime, end: datetime) -> list[Bar]:
        """Alpaca's bars (dicts, ascending) of ``ticker`` in [start, end), at most
        ``chunk_bars`` of them."""
        return self._fetch_raw(ticker, start, end, self.chunk_bars).get(ticker, [])

    def _fetch_raw(self, tickers: str | list[str], start: datetime, end: datetime,
                   limit: int | None = None) -> dict[str, list[Bar]]:
        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        names = [tickers] if isinstance(tickers, str) else list(tickers)
        label = names[0] if len(names) == 1 else f"{len(names)} tickers"
        end = self._clamp_end(end)
        if end <= start:
            return {}
        req = StockBarsRequest(symbol_or_symbols=names if len(names) > 1 else names[0],
                               timeframe=TimeFrame.Minute, start=start, end=end,
                               feed=DataFeed(self.feed), adjustment=Adjustment.RAW,
                               limit=limit)
        raw = self._get_bars(req, label)
        if not isinstance(raw, dict):
            return {}
        return {t: raw.get(t) or [] for t in names}

    def _get_bars(self, req: object, label: str) -> object:
        """One request (and its pages) through the retry policy: 429s waited out (up to
        ``RATE_LIMITED_TRIES``), 5xx and network errors retried ``max_attempts`` tries in all,
        anything else (401/403, a bad request) at once a ``BackfillError``."""
        errors = limited = 0

        def transient(e: BaseException) -> bool:
            nonlocal errors, limited
            status = api_error_status(e)
            if status == 429:
                limited += 1
                return limited < RATE_LIMITED_TRIES
            if status is None or status >= 500:
                errors += 1
                return errors < self.max_attempts
            return False

        def pause_for(_attempt: int, e: BaseException) -> float:
            if api_error_status(e) == 429:
                wait = retry_after(e, self.rate_limit_wait, minimum=self.rate_limit_min)
                logger.warning("backfill %s: rate limited (429); waiting %.1f s", label, wait)
                return wait
            wait = self.error_wait * min(2.0 ** (errors - 1), 16.0)
            logger.warning("backfill %s: %s; retrying in %.1f s", label,
                           api_error_message(e) or type(e).__name__, wait)
            return wait

        def fetch() -> object:
            self.requests += 1
            return self.client.get_stock_bars(req)  # type: ignore[attr-defined]

        # Every pause of both kinds fits in the budget: the counters above decide the end.
        policy = retry.RetryPolicy(
            attempts=RATE_LIMITED_TRIES + self.max_attempts, base=self.error_wait,
            cap=self.error_wait * 16,
            budget=RATE_LIMITED_TRIES * max(self.rate_limit_wait, 120.0)
            + self.max_attempts * self.error_wait * 16)
        try:
            return retry.call(fetch, policy, transient=transient, pause_for=pause_for,
                              what=f"backfill {label}")
        except retry.Exhausted as x:
            raise BackfillError(
                f"history for {label}: giving up after {x.tries} attempts "
                f"({api_error_message(x.last) or type(x.last).__name__})") from None
        except Exception as e:
            status = api_error_status(e)
            if status in (401, 403):
                raise BackfillError(refusal_text(f"history for {label}", status, None,
                                                 api_error_message(e), data_api=True)) from None
            if status is not None and status != 429 and status < 500:
                raise BackfillError(
                    f"history for {label} refused (HTTP {status}): {api_error_message(e)}"
                ) from None
            raise BackfillError(  # the last transient failure allowed (counters above)
                f"history for {label}: giving up after {errors + limited} attempts "
                f"({api_error_message(e) or type(e).__name__})") from None
