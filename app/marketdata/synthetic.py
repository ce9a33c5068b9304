"""The synthetic market for demo mode: seeded per-ticker random walks with an intraday shape.

Each (seed, ticker, session) has its own random generator, so any session's bars are the same
whichever order or how often they are generated: a restart regenerates identical history, and
``INSERT OR REPLACE`` makes writing them twice harmless. Within a session volatility and
volume are U-shaped (busy open and close, quiet midday); a slow intraday swing (period about
1-2 hours) is added so moving-average strategies see crossings within the first hour. Session
opens follow a smooth deterministic daily path, and each day's walk is bridged to end near the
next session's open, so the days join up with small overnight gaps.

Scheduled splits (the demo option ``demo.splits``): from a split's ex-date on, a ticker's bars
are its raw prices after the split (the continuous walk times old/new, volume times new/old),
so the DB sees the same cliff a raw Alpaca history has until the engine applies the split.

The feed writes each minute's bar into the market DB once the simulated clock has passed the
end of that minute (a bar is complete when stored), then tells bar listeners.
"""

from __future__ import annotations

import logging
import math
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import numpy as np

from app.broker import demo_universe
from app.clock import Clock
from app.listeners import Callbacks
from app.marketdata.base import BarListener, FeedStatus, StatusListener
from app.marketdata.subscriptions import SubscriptionSet
from db.calendar import MarketCalendar, Session
from db.market import Bar, MarketStore, check_ticker
from db.timeutil import floor_minute, minute_epoch

logger = logging.getLogger(__name__)

# The demo market's price levels (app.broker.demo_universe, the broker's list of symbols); a
# ticker outside it (an algorithm created before the demo had a fixed market) gets a made-up one.
KNOWN_PRICES = demo_universe.PRICES
HISTORY_SESSIONS = 3
MAX_CATCH_UP_SESSIONS = 5
# Sessions of bars kept a ticker: today's (read every minute) and the one before (the previous
# close). Older ones are asked for once (history, catch-up); a global LRU of 256 sessions kept
# growing for days in a long-running demo (~3 MB/h at the bench's 60x clock, issue 19).
CACHED_SESSIONS = 2


def _h(*parts: object) -> int:
    return zlib.crc32(":".join(str(p) for p in parts).encode())


class SyntheticFeed:
    def __init__(self, market: MarketStore, clock: Clock, calendar: MarketCalendar,
                 seed: int = 42, history_sessions: int = HISTORY_SESSIONS,
                 splits: Iterable[tuple[str, str, float, float]] = ()) -> None:
        self.market, self.clock, self.calendar = market, clock, calendar
        self.seed = int(seed)
        # ticker -> [(ex-date, new_rate / old_rate)], from (ticker, "YYYY-MM-DD", new, old)
        self._splits: dict[str, list[tuple[date, float]]] = {}
        for ticker, ex_date, new, old in splits:
            self._splits.setdefault(ticker, []).append((date.fromisoformat(ex_date), new / old))
        self.history_sessions = history_sessions
        self._subs = SubscriptionSet()
        self._bar_listeners: Callbacks[[Bar]] = Callbacks("bar listener")
        self._status_listeners: Callbacks[[FeedStatus]] = Callbacks("status listener")
        self._emitted: dict[str, int] = {}  # ticker -> start ts of the newest bar written
        # ticker -> its latest sessions' bars, newest last (``CACHED_SESSIONS`` a ticker)
        self._cache: dict[str, OrderedDict[date, np.ndarray]] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = FeedStatus("simulated", f"synthetic market, seed {self.seed}")

    # --- generation ----------------------------------------------------------------------
    def base_price(self, ticker: str) -> float:
        if ticker in KNOWN_PRICES:
            return KNOWN_PRICES[ticker]
        return 20.0 + (_h("price", ticker) % 48000) / 100.0

    def session_open_price(self, ticker: str, session: Session) -> float:
        """A smooth deterministic daily path: a few percent of drift over weeks."""
        d = session.day.toordinal()
        ph1 = (_h("ph1", self.seed, ticker) % 1000) / 159.0
        ph2 = (_h("ph2", self.seed, ticker) % 1000) / 159.0
        noise = ((_h("gap", self.seed, ticker, d) % 2001) - 1000) / 1000.0  # -1..1
        drift = 0.07 * math.sin(d / 17.0 + ph1) + 0.03 * math.sin(d / 5.3 + ph2) + 0.006 * noise
        return self.base_price(ticker) * math.exp(drift)

    def split_ratio(self, ticker: str, day: date) -> float:
        """New shares per old share of the scheduled splits in force on ``day`` (1: none)."""
        return math.prod(r for ex, r in self._splits.get(ticker, ()) if ex <= day)

    # Prices after a scheduled split: rounded to cents (the walk's raw prices, as quoted), or
    # None: left as divided (a subclass serving stored prices, ReplayFeed).
    split_decimals: int | None = 2

    def session_bars(self, ticker: str, session: Session) -> np.ndarray:
        """All of one session's bars: rows of (ts, o, h, l, c, v) as float64, raw prices (after
        the scheduled splits in force that day), cached (a ticker's few latest sessions)."""
        with self._lock:
            per_ticker = self._cache.get(ticker)
            if per_ticker is not None and (cached := per_ticker.get(session.day)) is not None:
                per_ticker.move_to_end(session.day)
                return cached
        out = self._continuous(ticker, session)
        k = self.split_ratio(ticker, session.day)
        if k != 1.0:
            prices = out[:, 1:5] / k
            out[:, 1:5] = prices if self.split_decimals is None else np.round(
                prices, self.split_decimals)
            out[:, 5] = np.floor(out[:, 5] * k)
        with self._lock:
            per_ticker = self._cache.setdefault(ticker, OrderedDict())
            per_ticker[session.day] = out
            while len(per_ticker) > CACHED_SESSIONS:
                per_ticker.popitem(last=False)
        return out

    def _continuous(self, ticker: str, session: Session) -> np.ndarray:
        """The session's continuous (split-free) bars, a new array: a seeded random walk here
        (a subclass may serve stored ones)."""
        n = int((session.close - session.open).total_seconds() // 60)
        rng = np.random.default_rng([self.seed, _h(ticker), session.day.toordinal()])
        x = (np.arange(n) + 0.5) / 390.0  # early closes keep the morning's shape
        u = (2 * np.clip(x, 0, 1) - 1) ** 2
        daily_vol = 0.012 + (_h("vol", ticker) % 100) / 10_000.0
        sigma = daily_vol / math.sqrt(390) * (0.55 + 1.8 * u)
        period = 70 + (_h("per", self.seed, ticker, session.day) % 50)
        phase = (_h("pha", self.seed, ticker, session.day) % 628) / 100.0
        swing = 0.004 * np.sin(2 * math.pi * np.arange(n + 1) / period + phase)
        rets = rng.standard_normal(n) * sigma + np.diff(swing)
        open0 = self.session_open_price(ticker, session)
        # A Brownian bridge: the day ends near the next session's open (a small overnight
        # gap), so consecutive sessions join up whatever order they are generated in.
        gap = rng.normal(0.0, 0.002)
        try:
            nxt = self.calendar.current_or_next_session(session.close + timedelta(minutes=1))
            target = math.log(self.session_open_price(ticker, nxt) / open0) - gap
        except ValueError:  # the calendar's last session: no next open to aim at
            target = -gap
        path = np.cumsum(rets)
        path -= (np.arange(1, n + 1) / n) * (path[-1] - target)
        close = open0 * np.exp(path)
        opens = np.concatenate(([open0], close[:-1]))
        wick = np.abs(rng.standard_normal((2, n))) * sigma * 0.6
        high = np.maximum(opens, close) * np.exp(wick[0])
        low = np.minimum(opens, close) * np.exp(-wick[1])
        base_volume = 2000 + _h("volu", ticker) % 20000
        vol = base_volume * (0.6 + 2.2 * u) * rng.lognormal(0.0, 0.35, n)
        ts = int(session.open.timestamp()) + 60 * np.arange(n)
        return np.column_stack([ts, np.round(opens, 2), np.round(high, 2), np.round(low, 2),
                                np.round(close, 2), np.floor(vol)])

    def bars_between(self, ticker: str, start_ts: int, end_ts: int) -> list[tuple]:
        """Rows (ticker, ts, o, h, l, c, v) for bars starting in [start_ts, end_ts)."""
        if end_ts <= start_ts:
            return []
        start = datetime.fromtimestamp(start_ts, UTC)
        end = datetime.fromtimestamp(end_ts, UTC)
        sessions = [s for s in self.calendar.sessions_between(
            (start - timedelta(days=1)).date(), end.date() + timedelta(days=1))
            if s.close.timestamp() > start_ts and s.open.timestamp() < end_ts]
        rows: list[tuple] = []
        # A long gap (a demo resumed weeks later) is filled with its last few sessions only.
        for s in sessions[-MAX_CATCH_UP_SESSIONS:]:
            arr = self.session_bars(ticker, s)
            sel = arr[(arr[:, 0] >= start_ts) & (arr[:, 0] < end_ts)]
            rows.extend((ticker, int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]),
                         int(r[5])) for r in sel)
        return rows

    # --- Feed ----------------------------------------------------------------------------
    def prepare(self, ticker: str) -> None:
        """Write the previous sessions and today's bars up to the last complete minute."""
        check_ticker(ticker)
        now = self.clock.now()
        upto = minute_epoch(now)  # bars starting before this are complete
        history = self.calendar.sessions_before(now, self.history_sessions)
        start = int(history[0].open.timestamp()) if history else upto - 86400
        with self._lock:
            done = self._emitted.get(ticker)
            if done is not None:
                if done >= upto - 60:
                    return
                # Written before (the new-algorithm check, then the create a minute later):
                # only the minutes since, as ensure_until does, not the whole window again.
                start = max(start, done + 60)
            rows = self.bars_between(ticker, start, upto)
            self.market.insert_rows(rows)
            self._emitted[ticker] = max(self._emitted.get(ticker, 0), upto - 60)
        logger.info("synthetic history for %s: %d bars", ticker, len(rows))

    def ensure_until(self, t: datetime) -> list[Bar]:
        """Write every subscribed ticker's bars that are complete at ``t``; return the new ones.

        Called by the feed's thread at each minute and by the engine before a tick, so a tick
        never runs before its last minute's bar is stored."""
        upto = minute_epoch(t)
        new: list[Bar] = []
        with self._lock:
            for ticker in sorted(self._subs.tickers()):
                last = self._emitted.get(ticker)
                if last is None:
                    self.prepare(ticker)
                    continue
                if last >= upto - 60:
                    continue
                rows = self.bars_between(ticker, last + 60, upto)
                if rows:
                    self.market.insert_rows(rows)
                    new.extend(Bar(*r) for r in rows)
                self._emitted[ticker] = upto - 60
        for bar in new:
            self._bar_listeners.notify(bar)
        return new

    def subscribe(self, ticker: str) -> None:
        check_ticker(ticker)
        if self._subs.acquire(ticker):
            logger.info("synthetic feed: subscribed %s", ticker)
            if ticker not in self._emitted:
                self.prepare(ticker)

    def unsubscribe(self, ticker: str) -> None:
        if self._subs.release(ticker):
            logger.info("synthetic feed: unsubscribed %s", ticker)

    def subscribed(self) -> set[str]:
        return self._subs.tickers()

    def add_bar_listener(self, listener: BarListener) -> None:
        self._bar_listeners.add(listener)

    def add_status_listener(self, listener: StatusListener) -> None:
        self._status_listeners.add(listener)
        listener(self._status)

    @property
    def status(self) -> FeedStatus:
        return self._status

    def is_halted(self, ticker: str) -> bool:
        """The simulated market never halts (see ``AlpacaStream.is_halted``)."""
        return False

    def start(self) -> None:
        """Write bars as the clock passes each minute. A manual clock (tests, backtests) has no
        time of its own to follow: then only ``ensure_until`` (called before each tick) runs."""
        if self._thread is not None and self._thread.is_alive():
            return
        if not math.isfinite(self.clock.speed):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="synthetic-feed", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            nxt = floor_minute(self.clock.now()) + timedelta(minutes=1)
            if not self.clock.sleep_until(nxt, self._stop):
                break
            try:
                self.ensure_until(self.clock.now())
            except Exception:
                logger.exception("synthetic feed failed to write bars")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
