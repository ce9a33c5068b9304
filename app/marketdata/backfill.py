"""Historical minute bars from Alpaca's data REST API into the market DB.

Used when an algorithm is created (``prepare``), at start-up and after a stream gap
(``backfill_range``). Requests go through alpaca-py's ``StockHistoricalDataClient`` (which
follows every ``next_page_token``), IEX by default, in chunks of a few weeks so a long
backfill reports progress and a failure loses at most one chunk. Only regular-session bars
are kept (the store filters them); storing is an upsert, so running it twice changes nothing.
A 429 is waited out (``X-RateLimit-Reset`` when sent) and the chunk retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from app.broker.alpaca_clients import (
    api_error_message,
    api_error_status,
    data_client,
    retry_after,
)
from app.calendar import MarketCalendar
from app.clock import Clock, WallClock
from app.config import Settings
from app.timeutil import from_epoch, require_aware
from db.market import MarketStore, check_ticker

logger = logging.getLogger(__name__)

# progress(ticker, fraction 0..1, bars stored so far)
ProgressCallback = Callable[[str, float, int], None]


class BackfillError(RuntimeError):
    """History could not be fetched; the message says why (keys, plan, network)."""


def _epoch(t: str) -> int:
    return int(datetime.fromisoformat(t).timestamp())


class Backfiller:
    def __init__(self, settings: Settings, market: MarketStore, calendar: MarketCalendar, *,
                 clock: Clock | None = None, client: object | None = None,
                 chunk_days: int = 30, rate_limit_wait: float = 30.0,
                 error_wait: float = 2.0, max_attempts: int = 8) -> None:
        self.settings = settings
        self.market = market
        self.calendar = calendar
        self.clock = clock or WallClock()
        self._client = client
        self.chunk_days = chunk_days
        self.rate_limit_wait = rate_limit_wait
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
        """Fetch and store ``ticker``'s minute bars in [start, end); return bars stored."""
        check_ticker(ticker)
        start, end = require_aware(start), require_aware(end)
        if end <= start:
            return 0
        total_s = (end - start).total_seconds()
        stored = 0
        with self._lock_for(ticker):
            t0 = time.monotonic()
            chunk_start = start
            while chunk_start < end:
                chunk_end = min(end, chunk_start + timedelta(days=self.chunk_days))
                rows = self._fetch(ticker, chunk_start, chunk_end)
                stored += self.market.insert_rows(rows)
                chunk_start = chunk_end
                if progress is not None:
                    done = (chunk_start - start).total_seconds() / total_s
                    try:
                        progress(ticker, min(1.0, done), stored)
                    except Exception:
                        logger.exception("backfill progress callback failed")
            logger.info("backfill %s %s..%s: %d regular-session bars in %.1f s", ticker,
                        start.isoformat(), end.isoformat(), stored, time.monotonic() - t0)
        return stored

    def _fetch(self, ticker: str, start: datetime, end: datetime) -> list[tuple]:
        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        req = StockBarsRequest(symbol_or_symbols=ticker, timeframe=TimeFrame.Minute,
                               start=start, end=end, feed=DataFeed(self.settings.alpaca.feed),
                               adjustment=Adjustment.RAW)
        attempt = limited = 0
        while True:
            try:
                self.requests += 1
                raw = self.client.get_stock_bars(req)  # type: ignore[attr-defined]
                break
            except Exception as e:
                status = api_error_status(e)
                if status == 429:
                    limited += 1
                    wait = retry_after(e, self.rate_limit_wait)
                    logger.warning("backfill %s: rate limited (429); waiting %.1f s", ticker, wait)
                elif status is None or status >= 500:
                    attempt += 1
                    wait = self.error_wait * min(2 ** (attempt - 1), 16)
                    logger.warning("backfill %s: %s; retrying in %.1f s", ticker,
                                   api_error_message(e) or type(e).__name__, wait)
                else:
                    raise BackfillError(
                        f"history for {ticker} refused (HTTP {status}): {api_error_message(e)}"
                    ) from None
                # 429s are waited out (up to ~an hour of them); other failures give up sooner.
                if attempt >= self.max_attempts or limited >= 120:
                    raise BackfillError(
                        f"history for {ticker}: giving up after {attempt + limited} attempts "
                        f"({api_error_message(e) or type(e).__name__})"
                    ) from None
                time.sleep(wait)
        bars = raw.get(ticker, []) if isinstance(raw, dict) else []
        return [(ticker, _epoch(b["t"]), float(b["o"]), float(b["h"]), float(b["l"]),
                 float(b["c"]), int(b.get("v") or 0)) for b in bars]
