"""Alpaca's market-data websocket (minute bars) as a ``Feed``, on websocket-client, JSON.

One thread owns the connection: connect, auth, subscribe the current set, then read. Every bar
is stored in the market DB (regular session only) and then handed to the listeners.

Failure handling, in order of how often it happens:
- a dropped connection: reconnect with exponential backoff and jitter, re-auth, re-subscribe
  the reference-counted set, and backfill the minutes missed while away (REST);
- a minute missing between two bars of one ticker (lost or late on the stream): that range is
  backfilled from REST in the background;
- a connection that stays open but goes silent while the market is open (no bar for any
  subscribed ticker for ``silence_timeout``): treated as dropped;
- 406 connection limit (Alpaca keeps a dropped session ~90 s, and one connection per account
  is shared by every app using the keys) and auth failures: an ``error`` status that says why
  and a paced retry (``limit_retry`` / ``auth_retry``), never a reconnect storm.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import select
import threading
import time
from datetime import datetime

import websocket

from app.broker.alpaca_clients import data_stream_url
from app.calendar import MarketCalendar
from app.clock import Clock, WallClock
from app.config import Settings
from app.marketdata.backfill import Backfiller, BackfillError, ProgressCallback
from app.marketdata.base import BarListener, FeedStatus, StatusListener
from app.marketdata.subscriptions import SubscriptionSet
from app.timeutil import from_epoch
from db.market import Bar, MarketStore, check_ticker

logger = logging.getLogger(__name__)


class _Dropped(Exception):
    """The connection ended or went silent; reconnect with backoff."""


class _Refused(Exception):
    """The server refused us (406 limit, auth, plan); retry only after ``wait`` seconds."""

    def __init__(self, code: int, why: str, wait: float) -> None:
        super().__init__(why)
        self.code, self.why, self.wait = code, why, wait


def _epoch(t: str) -> int:
    return int(datetime.fromisoformat(t).timestamp())


def _more_waiting(ws: websocket.WebSocket) -> bool:
    """True if another frame is already readable (so the current rows can wait for it)."""
    sock = ws.sock
    if sock is None:
        return False
    pending = getattr(sock, "pending", None)  # TLS: decrypted bytes select cannot see
    if pending is not None and pending():
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return False


class AlpacaStream:
    """Live minute bars. All tuning knobs have production defaults; tests shorten them."""

    def __init__(self, settings: Settings, market: MarketStore, calendar: MarketCalendar, *,
                 clock: Clock | None = None, backfiller: Backfiller | None = None,
                 url: str | None = None, connect_timeout: float = 10.0,
                 recv_timeout: float = 1.0, backoff_base: float = 1.0,
                 backoff_max: float = 60.0, limit_retry: float = 90.0,
                 auth_retry: float = 300.0, silence_timeout: float = 300.0,
                 gap_delay: float = 3.0) -> None:
        self.settings = settings
        self.market = market
        self.calendar = calendar
        self.clock = clock or WallClock()
        self.backfiller = backfiller or Backfiller(settings, market, calendar, clock=self.clock)
        self.url = url or data_stream_url(settings)
        self.connect_timeout = connect_timeout
        self.recv_timeout = recv_timeout
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.limit_retry, self.auth_retry = limit_retry, auth_retry
        self.silence_timeout = silence_timeout
        self.gap_delay = gap_delay
        self.max_batch = 5000

        self._subs = SubscriptionSet()
        self._bar_listeners: list[BarListener] = []
        self._status_listeners: list[StatusListener] = []
        self._progress_listeners: list[ProgressCallback] = []
        self._status = FeedStatus("stopped")
        self._status_lock = threading.Lock()
        # Guards the socket, the authed flag and subscription sends, so a subscribe racing a
        # reconnect is either in the set the thread sends or sent by the caller, never lost.
        self._ws_lock = threading.Lock()
        self._ws: websocket.WebSocket | None = None
        self._authed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gap_thread: threading.Thread | None = None
        self._gaps: queue.Queue[tuple[str, int, int] | None] = queue.Queue()
        self._last_ts: dict[str, int] = {}
        self._last_data = time.monotonic()
        self._rng = random.Random()
        # Counters for the UI / bench / tests.
        self.bars_received = 0
        self.bars_stored = 0
        self.connects = 0
        self.gap_fills = 0

    # --- Feed protocol ----------------------------------------------------------------------
    def prepare(self, ticker: str) -> None:
        """Backfill ``ticker``'s history window (blocking; not on the GUI thread). Progress
        goes to the listeners of ``add_progress_listener``."""
        self.backfiller.prepare(ticker, progress=self._progress)

    def add_progress_listener(self, listener: ProgressCallback) -> None:
        """``listener(ticker, fraction 0..1, bars stored)`` during ``prepare`` backfills."""
        self._progress_listeners.append(listener)

    def _progress(self, ticker: str, fraction: float, bars: int) -> None:
        for fn in list(self._progress_listeners):
            try:
                fn(ticker, fraction, bars)
            except Exception:
                logger.exception("backfill progress listener failed")

    def subscribe(self, ticker: str) -> None:
        check_ticker(ticker)
        with self._ws_lock:
            if self._subs.acquire(ticker):
                logger.info("stream: subscribing %s", ticker)
                latest = self.market.latest_ts(ticker)
                if latest is not None:
                    self._last_ts.setdefault(ticker, latest)
                self._send_locked("subscribe", [ticker])

    def unsubscribe(self, ticker: str) -> None:
        with self._ws_lock:
            if self._subs.release(ticker):
                logger.info("stream: unsubscribing %s", ticker)
                self._send_locked("unsubscribe", [ticker])

    def subscriptions(self) -> dict[str, int]:
        return {t: self._subs.count(t) for t in self._subs.tickers()}

    def add_bar_listener(self, listener: BarListener) -> None:
        self._bar_listeners.append(listener)

    def add_status_listener(self, listener: StatusListener) -> None:
        self._status_listeners.append(listener)

    @property
    def status(self) -> FeedStatus:
        with self._status_lock:
            return self._status

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alpaca-stream", daemon=True)
        self._thread.start()
        self._gap_thread = threading.Thread(target=self._gap_worker, name="alpaca-stream-gaps",
                                            daemon=True)
        self._gap_thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._gaps.put(None)
        with self._ws_lock:
            ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.abort()
        for t in (self._thread, self._gap_thread):
            if t is not None:
                t.join(timeout=10)
        self._thread = self._gap_thread = None
        self._set_status("stopped")

    close = stop

    # --- internals ----------------------------------------------------------------------
    def _set_status(self, state: str, detail: str = "") -> None:
        new = FeedStatus(state, detail)
        with self._status_lock:
            if new == self._status:
                return
            self._status = new
        log = logger.warning if state in ("error", "reconnecting") else logger.info
        log("stream status: %s%s", state, f" ({detail})" if detail else "")
        for fn in list(self._status_listeners):
            try:
                fn(new)
            except Exception:
                logger.exception("stream status listener failed")

    def _send_locked(self, action: str, tickers: list[str]) -> None:
        if self._ws is None or not self._authed or not tickers:
            return  # the thread subscribes the whole set after the next auth
        try:
            self._ws.send(json.dumps({"action": action, "bars": tickers, "updatedBars": tickers}))
        except Exception as e:  # the read loop will notice the dead socket and reconnect
            logger.info("stream: %s %s not sent (%s); will resend on reconnect", action, tickers, e)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter in [d/2, d]."""
        d = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        return d * (0.5 + 0.5 * self._rng.random())

    def _run(self) -> None:
        attempt = 0
        was_connected = False
        disconnected_at: int | None = None
        while not self._stop.is_set():
            self._set_status("reconnecting" if was_connected or attempt else "connecting",
                             f"connecting to {self.url}")
            ws = None
            reason = ""
            try:
                ws = self._connect()
                self.connects += 1
                attempt = 0
                self._set_status("connected", f"{len(self._subs.tickers())} tickers subscribed")
                if was_connected or disconnected_at is not None:
                    self._queue_reconnect_gaps(disconnected_at)
                disconnected_at = None
                was_connected = True
                self._read_loop(ws)
            except _Refused as e:
                self._close(ws)
                disconnected_at = disconnected_at or self._now_ts()
                retry_at = time.strftime("%H:%M:%S", time.localtime(time.time() + e.wait))
                self._set_status("error", f"{e.why}; retrying at {retry_at}")
                self._stop.wait(e.wait)
                continue
            except _Dropped as e:
                reason = str(e)
            except (websocket.WebSocketException, OSError, ValueError) as e:
                reason = f"{type(e).__name__}: {e}"
            except Exception as e:  # never let the stream thread die silently
                logger.exception("stream: unexpected error")
                reason = f"{type(e).__name__}: {e}"
            self._close(ws)
            if self._stop.is_set():
                break
            if disconnected_at is None:
                disconnected_at = self._now_ts()
            delay = self._backoff(attempt)
            attempt += 1
            self._set_status("reconnecting", f"connection lost ({reason}); retry in {delay:.1f} s")
            self._stop.wait(delay)
        self._set_status("stopped")

    def _now_ts(self) -> int:
        return int(self.clock.now().timestamp())

    def _close(self, ws: websocket.WebSocket | None) -> None:
        with self._ws_lock:
            if self._ws is ws:
                self._ws = None
                self._authed = False
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close(timeout=0.2)

    def _recv_json(self, ws: websocket.WebSocket) -> list:
        data = ws.recv()
        if not data:
            raise _Dropped("closed by server")
        msg = json.loads(data)
        return msg if isinstance(msg, list) else [msg]

    def _connect(self) -> websocket.WebSocket:
        ws = websocket.create_connection(self.url, timeout=self.connect_timeout)
        try:
            first = self._recv_json(ws)
            if not first or first[0].get("T") != "success":
                raise _Dropped(f"unexpected greeting {first!r}")
            a = self.settings.alpaca
            ws.send(json.dumps({"action": "auth", "key": str(a.key_id), "secret": str(a.secret_key)}))
            reply = self._recv_json(ws)
            for m in reply:
                if m.get("T") == "error":
                    raise self._refusal(int(m.get("code", 0)), str(m.get("msg", "")))
            if not any(m.get("T") == "success" and m.get("msg") == "authenticated" for m in reply):
                raise _Dropped(f"unexpected auth reply {reply!r}")
            with self._ws_lock:
                self._ws, self._authed = ws, True
                tickers = sorted(self._subs.tickers())
                self._send_locked("subscribe", tickers)
            self._last_data = time.monotonic()
            return ws
        except BaseException:
            self._close(ws)
            raise

    def _refusal(self, code: int, msg: str) -> _Refused:
        if code == 406:
            return _Refused(code, "connection limit exceeded (406): another app or a session "
                            "dropped in the last ~90 s uses these keys", self.limit_retry)
        if code in (401, 402):
            return _Refused(code, f"Alpaca refused the API keys ({code} {msg})", self.auth_retry)
        if code in (405, 409, 410):
            return _Refused(code, f"subscription refused ({code} {msg}); check the data plan "
                            f"and feed '{self.settings.alpaca.feed}'", self.auth_retry)
        return _Refused(code, f"stream error {code} {msg}", self.limit_retry)

    def _read_loop(self, ws: websocket.WebSocket) -> None:
        """Read until the connection drops or goes silent. Bars of frames that arrive back to
        back are stored in one transaction (one commit per frame caps ingest near 10k bars/s);
        they are flushed as soon as nothing more is waiting, so no bar waits on the next."""
        ws.settimeout(self.recv_timeout)
        last_check = time.monotonic()
        pending: list[tuple] = []
        try:
            while not self._stop.is_set():
                try:
                    data = ws.recv()
                except websocket.WebSocketTimeoutException:
                    self._check_silence()
                    continue
                except (websocket.WebSocketConnectionClosedException, OSError) as e:
                    raise _Dropped(f"{type(e).__name__}: {e}") from None
                if not data:
                    raise _Dropped("closed by server")
                try:
                    msgs = json.loads(data)
                except ValueError:
                    logger.warning("stream: unreadable message skipped: %.200r", data)
                    continue
                pending.extend(self._handle(msgs))
                if len(pending) < self.max_batch and _more_waiting(ws):
                    continue
                if pending:
                    rows, pending = pending, []
                    self._ingest(rows)
                now = time.monotonic()
                if now - last_check > 1.0:
                    last_check = now
                    self._check_silence()
        finally:
            if pending:
                self._ingest(pending)

    def _check_silence(self) -> None:
        """Silence = no bar for ANY subscribed ticker: one illiquid IEX ticker alone would
        otherwise force a reconnect every few minutes."""
        if not self._subs.tickers():
            self._last_data = time.monotonic()
            return
        quiet = time.monotonic() - self._last_data
        if quiet > self.silence_timeout and self.calendar.is_open(self.clock.now()):
            raise _Dropped(f"no bar for {quiet:.0f} s while the market is open")

    def _handle(self, msgs: list | dict) -> list[tuple]:
        """Bar rows of one message; control messages are dealt with here."""
        if isinstance(msgs, dict):
            msgs = [msgs]
        rows = []
        for m in msgs:
            if not isinstance(m, dict):
                continue
            kind = m.get("T")
            if kind == "b" or kind == "u":
                try:
                    rows.append((m["S"], _epoch(m["t"]), float(m["o"]), float(m["h"]),
                                 float(m["l"]), float(m["c"]), int(m.get("v") or 0)))
                except (KeyError, TypeError, ValueError):
                    logger.warning("stream: malformed bar %r skipped", m)
            elif kind == "error":
                code = int(m.get("code", 0))
                if code in (406, 401, 402, 405, 409, 410):
                    raise self._refusal(code, str(m.get("msg", "")))
                logger.warning("stream error %s: %s", code, m.get("msg"))
            elif kind == "subscription":
                logger.debug("stream subscriptions now: bars=%s", m.get("bars"))
        return rows

    def _ingest(self, rows: list[tuple]) -> None:
        self._last_data = time.monotonic()
        self.bars_received += len(rows)
        is_open = self.calendar.is_open_epoch
        kept = [r for r in rows if is_open(r[1])]
        if not kept:
            return
        self.bars_stored += self.market.insert_rows(kept, filter_session=False)
        for r in kept:
            ticker, ts = r[0], r[1]
            last = self._last_ts.get(ticker)
            if last is not None and ts > last + 60 and self._subs.count(ticker):
                self._queue_gap(ticker, last + 60, ts)
            if last is None or ts > last:
                self._last_ts[ticker] = ts
        listeners = self._bar_listeners
        if listeners:
            for r in kept:
                bar = Bar(*r)
                for fn in listeners:
                    try:
                        fn(bar)
                    except Exception:
                        logger.exception("bar listener failed")

    def _queue_gap(self, ticker: str, start_ts: int, end_ts: int) -> None:
        # Never reach further back than the history window (a DB last filled months ago).
        floor = int(self.backfiller.window_start(self.clock.now()).timestamp())
        start_ts = max(start_ts, floor)
        if start_ts < end_ts and self.calendar.minutes_between(from_epoch(start_ts),
                                                               from_epoch(end_ts)):
            self._gaps.put((ticker, start_ts, end_ts))

    def _queue_reconnect_gaps(self, disconnected_at: int | None) -> None:
        end = self._now_ts() // 60 * 60
        for t in sorted(self._subs.tickers()):
            last = self._last_ts.get(t) or self.market.latest_ts(t)
            start = last + 60 if last is not None else disconnected_at
            if start is not None and start < end:
                self._queue_gap(t, start, end)

    def _gap_worker(self) -> None:
        while True:
            item = self._gaps.get()
            try:
                if item is None or self._stop.is_set():
                    return
                # REST may lag the stream by a moment: give it time to have the minute.
                if self.gap_delay and self._stop.wait(self.gap_delay):
                    return
                ticker, start_ts, end_ts = item
                try:
                    n = self.backfiller.backfill_range(ticker, from_epoch(start_ts),
                                                       from_epoch(end_ts))
                    self.gap_fills += 1
                    logger.info("stream gap %s %s..%s: %d bars backfilled", ticker,
                                from_epoch(start_ts).isoformat(), from_epoch(end_ts).isoformat(), n)
                except BackfillError as e:
                    logger.warning("stream gap %s not backfilled: %s", ticker, e)
                except Exception:
                    logger.exception("stream gap %s not backfilled", ticker)
            finally:
                self._gaps.task_done()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until queued gap backfills are done (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._gaps.unfinished_tasks == 0:
                return True
            time.sleep(0.02)
        return False

