"""Alpaca's market-data websocket (minute bars) as a ``Feed``, on websocket-client, JSON.

One thread owns the connection: connect, auth, subscribe the current set, then read. Every bar
is stored in the market DB (regular session only) and then handed to the listeners.

Failure handling, in order of how often it happens:
- a dropped connection: reconnect with exponential backoff and jitter, re-auth, re-subscribe
  the reference-counted set, and backfill the minutes missed while away (REST);
- a minute missing between two bars of one ticker (lost on the stream, or simply no trade: IEX
  sends no bar for a minute without trades): the ranges of all tickers are coalesced (one
  range per ticker, ``gap_delay`` seconds of batching) and fetched with ONE multi-symbol
  ``/v2/stocks/bars`` request per batch; minutes a REST answer already covered are never
  asked again. The queue holds at most one range per subscribed ticker;
- a subscription the server refuses (400 bad symbol, 405 symbol limit, 410 channel not on
  this feed): that request's symbols are retried one by one, the culprit is marked
  ``refused`` with the reason (``ticker_status``) and the connection and the other
  subscriptions stay. A 410 caused by the ``statuses`` channel drops that channel only;
- trading halts and LULD pauses: the ``statuses`` channel of every subscribed ticker keeps a
  per-ticker halted flag (``is_halted``) that the engine asks before sending an order;
- websocket pings every ``ping_interval``; no pong within ``pong_timeout``: a dead connection;
- a connection quiet all night is replaced ``preopen_reconnect`` seconds before the open, so
  the first tick never runs on a socket that silently died overnight;
- a connection that stays open but goes silent while the market is open (no bar for any
  subscribed ticker for ``silence_timeout``): treated as dropped;
- the ``delayed_sip`` feed (a free plan's SIP: every bar comes 15 minutes after its minute;
  docs.alpaca.markets/docs/real-time-stock-pricing-data, "v2/delayed_sip is a 15-minute
  delayed SIP feed"): ``watermark()`` says which minutes are final (before it) and which are
  still to come; the 15 minutes after it are never a gap, never backfilled nor marked as
  answered, and the market counts as open for the silence check only as the feed shows it
  (from 15 minutes after the open), so the delay is neither a gap nor a dead stream;
- 406 connection limit (Alpaca keeps a dropped session ~90 s, and one connection per account
  is shared by every app using the keys) and auth failures: an ``error`` status that says why
  and a paced retry (``limit_retry`` / ``auth_retry``), never a reconnect storm.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import threading
import time

import websocket

from app.broker.alpaca_clients import data_stream_url, historical_feed
from app.broker.ws_reconnect import Dropped, Heartbeat, ReconnectingWebSocket, Refused
from app.clock import Clock, WallClock
from app.config import Settings
from app.listeners import Callbacks
from app.marketdata.backfill import Backfiller, BackfillError, ProgressCallback, bar_epoch
from app.marketdata.base import (
    BarListener,
    FeedStatus,
    StatusListener,
    TickerStatus,
    TickerStatusListener,
)
from app.marketdata.subscriptions import SubscriptionSet
from db.calendar import MarketCalendar
from db.market import Bar, MarketStore, check_ticker
from db.timeutil import from_epoch

logger = logging.getLogger(__name__)


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


class AlpacaStream(ReconnectingWebSocket):
    """Live minute bars. All tuning knobs have production defaults; tests shorten them."""

    thread_name = "alpaca-stream"

    def __init__(self, settings: Settings, market: MarketStore, calendar: MarketCalendar, *,
                 clock: Clock | None = None, backfiller: Backfiller | None = None,
                 url: str | None = None, connect_timeout: float = 10.0,
                 recv_timeout: float = 1.0, backoff_base: float = 1.0,
                 backoff_max: float = 60.0, limit_retry: float = 90.0,
                 auth_retry: float = 300.0, silence_timeout: float = 300.0,
                 gap_delay: float = 15.0, ping_interval: float = 20.0,
                 pong_timeout: float = 20.0, preopen_reconnect: float = 300.0,
                 gap_symbols: int = 200) -> None:
        super().__init__(backoff_base=backoff_base, backoff_max=backoff_max,
                         ping_interval=ping_interval, pong_timeout=pong_timeout)
        self.settings = settings
        self.market = market
        self.calendar = calendar
        self.clock = clock or WallClock()
        self.backfiller = backfiller or Backfiller(settings, market, calendar, clock=self.clock)
        self.url = url or data_stream_url(settings)
        self.connect_timeout = connect_timeout
        self.recv_timeout = recv_timeout
        self.limit_retry, self.auth_retry = limit_retry, auth_retry
        self.silence_timeout = silence_timeout
        self.gap_delay = gap_delay
        self.preopen_reconnect = preopen_reconnect
        self.gap_symbols = gap_symbols
        self.max_batch = 5000
        # Seconds between a minute's close and its bar on this feed (delayed_sip: 900).
        try:
            self.delay_seconds = historical_feed(settings.alpaca.feed)[1]
        except ValueError:
            self.delay_seconds = 0

        self._subs = SubscriptionSet()
        # Listener lists (app.listeners: thread-safe, a raising listener logged, the others
        # still called).
        self._bar_listeners: Callbacks[[Bar]] = Callbacks("bar listener")
        self._status_listeners: Callbacks[[FeedStatus]] = Callbacks("stream status listener")
        self._progress_listeners: Callbacks[[str, float, int]] = Callbacks(
            "backfill progress listener")
        self._status = FeedStatus("stopped")
        self._status_lock = threading.Lock()
        # The base's _ws_lock also guards the authed flag and subscription sends, so a subscribe
        # racing a reconnect is either in the set the thread sends or sent by the caller.
        self._authed = False
        self._was_connected = False  # since start(): a later open is a reconnect
        self._disconnected_at: int | None = None  # clock time the connection was lost
        self._gap_thread: threading.Thread | None = None
        # Gap backfill: one merged [start, end) per ticker; REST-answered watermark per ticker.
        self._gap_lock = threading.Lock()
        self._gap_wake = threading.Event()
        self._gaps: dict[str, tuple[int, int]] = {}
        self._gap_busy = False
        self._answered: dict[str, int] = {}
        self._last_ts: dict[str, int] = {}
        self._last_data = time.monotonic()
        self._last_data_at = 0.0  # clock time (epoch s) of the last data frame
        self._connected_at = 0.0  # clock time of the current connection's auth
        # Subscription bookkeeping: requests awaiting the server's answer, in order.
        self._acks: list[tuple[str, tuple[str, ...], bool]] = []  # (action, tickers, statuses)
        self._statuses_ok = True  # False once the feed refused the statuses channel (410)
        self._tstatus: dict[str, TickerStatus] = {}
        self._ticker_listeners: Callbacks[[TickerStatus]] = Callbacks("ticker status listener")
        # Counters for the UI / bench / tests.
        self.bars_received = 0
        self.bars_stored = 0
        self.gap_fills = 0  # gap batches fetched
        self.gap_requests = 0  # REST requests those batches made (pages included)

    # --- Feed protocol ----------------------------------------------------------------------
    def prepare(self, ticker: str) -> None:
        """Backfill ``ticker``'s history window (blocking; not on the GUI thread). Progress
        goes to the listeners of ``add_progress_listener``."""
        self.backfiller.prepare(ticker, progress=self._progress)

    def add_progress_listener(self, listener: ProgressCallback) -> None:
        """``listener(ticker, fraction 0..1, bars stored)`` during ``prepare`` backfills."""
        self._progress_listeners.add(listener)

    def _progress(self, ticker: str, fraction: float, bars: int) -> None:
        self._progress_listeners.notify(ticker, fraction, bars)

    def subscribe(self, ticker: str) -> None:
        check_ticker(ticker)
        with self._ws_lock:
            if self._subs.acquire(ticker):
                logger.info("stream: subscribing %s", ticker)
                latest = self.market.latest_ts(ticker)
                # The gap reference: the newest stored bar, or with none (no history: a
                # ticker new to the DB whose backfill found nothing) the minute before this
                # one, so a bar lost before the first one received is still missed and fetched.
                ref = latest if latest is not None else self.watermark() - 60
                self._last_ts.setdefault(ticker, ref)
                self._set_ticker(ticker, state="pending", detail="", halted=False,
                                 halt_reason="", last_bar_ts=latest)
                self._send_locked("subscribe", [ticker])

    def unsubscribe(self, ticker: str) -> None:
        with self._ws_lock:
            if self._subs.release(ticker):
                logger.info("stream: unsubscribing %s", ticker)
                refused = self.ticker_status(ticker).state == "refused"
                self._set_ticker(ticker, state="unsubscribed", detail="", halted=False,
                                 halt_reason="")
                if not refused:
                    self._send_locked("unsubscribe", [ticker])

    def watermark(self) -> int:
        """Epoch second (a minute mark) before which every minute is final as this feed sees
        it: its bar has come, or none will (a minute without trades). Minutes from it on are
        still to come: on ``delayed_sip`` the last 15 minutes, on IEX/SIP the current one."""
        return (self._now_ts() - self.delay_seconds) // 60 * 60

    def subscriptions(self) -> dict[str, int]:
        return {t: self._subs.count(t) for t in self._subs.tickers()}

    # --- per-ticker status (subscription refusals, halts) -------------------------------------
    def ticker_status(self, ticker: str) -> TickerStatus:
        """What the stream knows about ``ticker`` (see ``TickerStatus``)."""
        with self._status_lock:
            return self._tstatus.get(ticker) or TickerStatus(ticker)

    def is_halted(self, ticker: str) -> bool:
        """True while a trading halt or LULD pause is in force for ``ticker``: the engine
        holds (sends no order for) its algorithms until it is False again."""
        return self.ticker_status(ticker).halted

    def add_ticker_status_listener(self, listener: TickerStatusListener) -> None:
        """``listener(TickerStatus)`` on every change (from the stream thread)."""
        self._ticker_listeners.add(listener)

    def _set_ticker(self, ticker: str, **changes: object) -> None:
        with self._status_lock:
            old = self._tstatus.get(ticker) or TickerStatus(ticker)
            new = TickerStatus(**{**old.__dict__, **changes})
            if new == old:
                return
            self._tstatus[ticker] = new
        if (new.state, new.halted) != (old.state, old.halted):
            (logger.warning if new.state == "refused" or new.halted else logger.info)(
                "stream %s: %s%s%s", ticker, new.state, " HALTED" if new.halted else "",
                f" ({new.detail or new.halt_reason})" if new.detail or new.halt_reason else "")
        self._ticker_listeners.notify(new)

    def add_bar_listener(self, listener: BarListener) -> None:
        self._bar_listeners.add(listener)

    def add_status_listener(self, listener: StatusListener) -> None:
        self._status_listeners.add(listener)

    @property
    def status(self) -> FeedStatus:
        with self._status_lock:
            return self._status

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._was_connected, self._disconnected_at = False, None
        super().start()
        self._gap_thread = threading.Thread(target=self._gap_worker, name="alpaca-stream-gaps",
                                            daemon=True)
        self._gap_thread.start()

    def stop(self) -> None:
        super().stop()
        self._gap_wake.set()
        if self._gap_thread is not None:
            self._gap_thread.join(timeout=10)
        self._gap_thread = None
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
        self._status_listeners.notify(new)

    def _send_locked(self, action: str, tickers: list[str]) -> None:
        if self._ws is None or not self._authed or not tickers:
            return  # the thread subscribes the whole set after the next auth
        msg: dict[str, object] = {"action": action, "bars": tickers, "updatedBars": tickers}
        statuses = self._statuses_ok
        if statuses:
            msg["statuses"] = tickers
        # The answer can arrive before ``send`` returns: expect it first, so the reader
        # never sees an answer with no request waiting for it.
        ack = (action, tuple(tickers), statuses)
        self._acks.append(ack)
        try:
            self._ws.send(json.dumps(msg))
        except Exception as e:  # the read loop will notice the dead socket and reconnect
            if ack in self._acks:
                self._acks.remove(ack)
            logger.info("stream: %s %s not sent (%s); will resend on reconnect", action, tickers, e)

    # --- ReconnectingWebSocket hooks (the loop: app.broker.ws_reconnect) ------------------------
    def _connecting(self, attempt: int) -> None:
        self._set_status("reconnecting" if self._was_connected or attempt else "connecting",
                         f"connecting to {self.url}")

    def _open(self) -> websocket.WebSocket:
        return self._connect()

    def _on_open(self, ws: websocket.WebSocket) -> None:
        self._set_status("connected", f"{len(self._subs.tickers())} tickers subscribed")
        if self._was_connected or self._disconnected_at is not None:
            self._queue_reconnect_gaps(self._disconnected_at)
        self._disconnected_at, self._was_connected = None, True

    def _serve(self, ws: websocket.WebSocket) -> None:
        self._read_loop(ws)

    def _refused(self, e: Refused) -> None:
        self._disconnected_at = self._disconnected_at or self._now_ts()
        retry_at = time.strftime("%H:%M:%S", time.localtime(time.time() + e.wait))
        self._set_status("error", f"{e.why}; retrying at {retry_at}")

    def _lost(self, reason: str, delay: float) -> None:
        if self._disconnected_at is None:
            self._disconnected_at = self._now_ts()
        self._set_status("reconnecting", f"connection lost ({reason}); retry in {delay:.1f} s")

    def _stopped(self) -> None:
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
            raise Dropped("closed by server")
        msg = json.loads(data)
        return msg if isinstance(msg, list) else [msg]

    def _connect(self) -> websocket.WebSocket:
        # websocket-client checks a text frame's UTF-8 in pure Python, byte by byte, unless
        # skipped (its FAQ, "Why is this library slow?": websocket-client.readthedocs.io/en/
        # latest/faq.html): 90 ms a 1,000-bar frame here. json.loads still refuses bad UTF-8
        # (a ValueError: the frame is logged and skipped, as any unreadable one).
        ws = websocket.create_connection(self.url, timeout=self.connect_timeout,
                                         skip_utf8_validation=True)
        try:
            first = self._recv_json(ws)
            if not first or first[0].get("T") != "success":
                raise Dropped(f"unexpected greeting {first!r}")
            a = self.settings.alpaca
            ws.send(json.dumps({"action": "auth", "key": str(a.key_id), "secret": str(a.secret_key)}))
            reply = self._recv_json(ws)
            for m in reply:
                if m.get("T") == "error":
                    raise self._refusal(int(m.get("code", 0)), str(m.get("msg", "")))
            if not any(m.get("T") == "success" and m.get("msg") == "authenticated" for m in reply):
                raise Dropped(f"unexpected auth reply {reply!r}")
            with self._ws_lock:
                self._ws, self._authed = ws, True
                self._acks = []
                tickers = sorted(t for t in self._subs.tickers()
                                 if self.ticker_status(t).state != "refused")
                self._send_locked("subscribe", tickers)
            self._last_data = time.monotonic()
            self._connected_at = self.clock.now().timestamp()
            return ws
        except BaseException:
            self._close(ws)
            raise

    def _refusal(self, code: int, msg: str) -> Refused:
        if code == 406:
            return Refused("connection limit exceeded (406): another app or a session dropped "
                           "in the last ~90 s uses these keys", self.limit_retry, code)
        if code in (401, 402):
            return Refused(f"Alpaca refused the API keys ({code} {msg})", self.auth_retry, code)
        if code == 409:
            return Refused(f"subscription refused ({code} {msg}); check the data plan and feed "
                           f"'{self.settings.alpaca.feed}'", self.auth_retry, code)
        return Refused(f"stream error {code} {msg}", self.limit_retry, code)

    def _read_loop(self, ws: websocket.WebSocket) -> None:
        """Read until the connection drops or goes silent. Bars of data frames that arrive
        back to back are stored in one transaction (one commit per frame caps ingest near 10k
        bars/s). Rows are held only while the next frame waiting is data: a control frame
        (ping, pong) or a quiet socket flushes them at once. (Holding them until the next
        DATA frame once kept a minute's bars back until the next minute, issue 11.)"""
        ws.settimeout(self.recv_timeout)
        beat = Heartbeat(time.monotonic())
        pending: list[tuple] = []
        try:
            while not self._stop.is_set():
                self._keep_alive(ws, beat)
                data = self._recv_data(ws, beat)
                if data is not None:
                    pending.extend(self._decode(data))
                    if len(pending) < self.max_batch and _more_waiting(ws):
                        continue
                if pending:
                    rows, pending = pending, []
                    self._ingest(rows)
        finally:
            if pending:
                self._ingest(pending)

    def _keep_alive(self, ws: websocket.WebSocket, beat: Heartbeat) -> None:
        """Pings (the base), and the once-a-second silence check (a busy socket never reaches
        the read timeout's check)."""
        super()._keep_alive(ws, beat)
        now = time.monotonic()
        if now - beat.check > 1.0:
            beat.check = now
            self._check_silence()

    def _recv_data(self, ws: websocket.WebSocket, beat: Heartbeat) -> bytes | str | None:
        """The next data frame's payload, or None (control frame, or a quiet ``recv_timeout``
        after which silence is checked)."""
        data = self._recv_frame(ws, beat)
        if data is None:
            self._check_silence()
        return data

    def _decode(self, data: bytes | str) -> list[tuple]:
        """Bar rows of one data frame (control messages are acted on); [] if unreadable."""
        try:
            msgs = json.loads(data)
        except ValueError:
            logger.warning("stream: unreadable message skipped: %.200r", data)
            return []
        return self._handle(msgs)

    def _check_silence(self) -> None:
        """Silence = no bar for ANY subscribed ticker: one illiquid IEX ticker alone would
        otherwise force a reconnect every few minutes. Before the open, a connection that has
        seen nothing since before the pre-open window is replaced once."""
        now_at = self.clock.now()
        if self.preopen_reconnect and self._subs.tickers():
            nxt = self.calendar.next_open(now_at).timestamp()
            window = nxt - self.preopen_reconnect
            t = now_at.timestamp()
            if window <= t < nxt and self._connected_at < window and self._last_data_at < window:
                raise Dropped("quiet all night: a fresh connection before the open")
        if not self._subs.tickers():
            self._last_data = time.monotonic()
            return
        # The market as the feed shows it (delayed_sip: as it was 15 minutes ago), and only
        # the time it has been open counts: the first bars of a session are not yet late.
        seen = int(now_at.timestamp()) - self.delay_seconds
        bounds = self.calendar.session_bounds_epoch(seen)
        if bounds is None:
            return
        quiet = min(time.monotonic() - self._last_data, seen - bounds[0])
        if quiet > self.silence_timeout:
            raise Dropped(f"no bar for {quiet:.0f} s while the market is open")

    def _handle(self, msgs: list | dict) -> list[tuple]:
        """Bar rows of one message; control and status messages are dealt with here."""
        if isinstance(msgs, dict):
            msgs = [msgs]
        rows = []
        for m in msgs:
            if not isinstance(m, dict):
                continue
            kind = m.get("T")
            if kind == "b" or kind == "u":
                try:
                    rows.append((m["S"], bar_epoch(m["t"]), float(m["o"]), float(m["h"]),
                                 float(m["l"]), float(m["c"]), int(m.get("v") or 0)))
                except (KeyError, TypeError, ValueError):
                    logger.warning("stream: malformed bar %r skipped", m)
            elif kind == "s":
                self._on_trading_status(m)
            elif kind == "error":
                code = int(m.get("code", 0) or 0)
                if code in (406, 401, 402, 404, 409):
                    raise self._refusal(code, str(m.get("msg", "")))
                if code in (400, 405, 410) and self._acks:
                    self._subscription_failed(code, str(m.get("msg", "")))
                else:
                    logger.warning("stream error %s: %s", code, m.get("msg"))
            elif kind == "subscription":
                self._subscription_confirmed(m)
        return rows

    # --- subscription answers -------------------------------------------------------------
    def _subscription_confirmed(self, m: dict) -> None:
        with self._ws_lock:
            action, tickers, _ = self._acks.pop(0) if self._acks else ("", (), False)
        bars = set(m.get("bars") or [])
        if action == "subscribe":
            for t in tickers:
                if t in bars and self._subs.count(t):
                    self._set_ticker(t, state="subscribed", detail="")
        logger.debug("stream subscriptions now: bars=%s", sorted(bars))

    def _subscription_failed(self, code: int, msg: str) -> None:
        """The server refused one request (its subscriptions are as before it). A request for
        several symbols is retried one by one so only the culprit is refused; a 410 with the
        statuses channel is retried without it (halts are then unknown on this feed)."""
        with self._ws_lock:
            action, tickers, statuses = self._acks.pop(0)
            if action != "subscribe":
                logger.warning("stream: %s %s refused (%s %s)", action, tickers, code, msg)
                return
            wanted = [t for t in tickers if self._subs.count(t)]
            if code == 410 and statuses:
                logger.warning("stream: feed refused the statuses channel (410 %s); halts "
                               "will not be known from the stream", msg)
                self._statuses_ok = False
                for t in wanted:
                    self._send_locked("subscribe", [t])
                return
            if len(wanted) > 1:
                for t in wanted:
                    self._send_locked("subscribe", [t])
                return
        why = {400: "Alpaca does not accept this symbol", 405: "the data plan's symbol limit "
               "is reached", 410: "this feed does not offer these channels"}.get(code, "refused")
        for t in wanted:
            self._set_ticker(t, state="refused", detail=f"{why} ({code} {msg})")

    def _on_trading_status(self, m: dict) -> None:
        """Trading status (``T: s``): halts and resumptions from the ``statuses`` channel.
        Codes from Alpaca's docs: UTP (tapes C, O) H halt, P volatility (LULD) pause,
        Q quotation resumption (still no trading), T trading resumption; CTA (tapes A, B)
        2 halt, 3 resume. Other codes (imbalances, short sale restriction) change nothing."""
        t, sc = str(m.get("S", "")), str(m.get("sc", ""))
        if not t or not self._subs.count(t):
            return
        reason = " - ".join(x for x in (str(m.get("sm") or ""), str(m.get("rm") or "")) if x)
        if sc in ("H", "P", "2"):
            self._set_ticker(t, halted=True, halt_reason=reason or f"status {sc}")
        elif sc in ("T", "3"):
            self._set_ticker(t, halted=False, halt_reason="")

    def _ingest(self, rows: list[tuple]) -> None:
        self._last_data = time.monotonic()
        self._last_data_at = self.clock.now().timestamp()
        self.bars_received += len(rows)
        is_open = self.calendar.is_open_epoch
        kept = [r for r in rows if is_open(r[1])]
        if not kept:
            return
        self.bars_stored += self.market.insert_rows(kept, filter_session=False)
        newest: dict[str, int] = {}
        for r in kept:
            ticker, ts = r[0], r[1]
            last = self._last_ts.get(ticker)
            if last is not None and ts > last + 60 and self._subs.count(ticker):
                self._queue_gap(ticker, last + 60, ts)
            if last is None or ts > last:
                self._last_ts[ticker] = ts
                newest[ticker] = ts
        for ticker, ts in newest.items():
            self._set_ticker(ticker, last_bar_ts=ts)
        if self._bar_listeners:
            for r in kept:
                self._bar_listeners.notify(Bar(*r))

    # --- gap backfill ---------------------------------------------------------------------
    def _queue_gap(self, ticker: str, start_ts: int, end_ts: int) -> None:
        """Note [start, end) of ``ticker`` for the next gap batch, merged with what is pending
        (one range per ticker: the queue is bounded by the subscriptions), minus what a REST
        answer already covered."""
        # Never reach further back than the history window (a DB last filled months ago).
        floor = int(self.backfiller.window_start(self.clock.now()).timestamp())
        with self._gap_lock:
            start_ts = max(start_ts, floor, self._answered.get(ticker, 0))
            if start_ts >= end_ts or not self.calendar.minutes_between(from_epoch(start_ts),
                                                                       from_epoch(end_ts)):
                return
            old = self._gaps.get(ticker)
            if old is not None:
                start_ts, end_ts = min(old[0], start_ts), max(old[1], end_ts)
            self._gaps[ticker] = (start_ts, end_ts)
        self._gap_wake.set()

    def _queue_reconnect_gaps(self, disconnected_at: int | None) -> None:
        end = self.watermark()  # minutes after it are still to come on the stream
        for t in sorted(self._subs.tickers()):
            last = self._last_ts.get(t) or self.market.latest_ts(t)
            start = last + 60 if last is not None else disconnected_at
            if start is not None and start < end:
                self._queue_gap(t, start, end)

    def pending_gaps(self) -> dict[str, tuple[int, int]]:
        with self._gap_lock:
            return dict(self._gaps)

    def _gap_worker(self) -> None:
        while not self._stop.is_set():
            self._gap_wake.wait()
            if self._stop.is_set():
                return
            # Let the batch fill (and REST catch up with the stream) before asking.
            if self.gap_delay and self._stop.wait(self.gap_delay):
                return
            with self._gap_lock:
                self._gap_wake.clear()
                batch, self._gaps = self._gaps, {}
                self._gap_busy = bool(batch)
            try:
                tickers = sorted(batch)
                for i in range(0, len(tickers), self.gap_symbols):
                    if self._stop.is_set():
                        return
                    self._fetch_gaps({t: batch[t] for t in tickers[i:i + self.gap_symbols]})
            finally:
                with self._gap_lock:
                    self._gap_busy = False

    def _fetch_gaps(self, gaps: dict[str, tuple[int, int]]) -> None:
        start = min(g[0] for g in gaps.values())
        end = max(g[1] for g in gaps.values())
        before = self.backfiller.requests
        final = self.watermark()  # REST has nothing newer for this feed (delayed_sip: -15 min)
        try:
            counts = self.backfiller.backfill_many(list(gaps), from_epoch(start), from_epoch(end))
        except BackfillError as e:
            logger.warning("stream gaps of %d tickers not backfilled: %s", len(gaps), e)
            return
        except Exception:
            logger.exception("stream gaps of %d tickers not backfilled", len(gaps))
            return
        finally:
            self.gap_requests += self.backfiller.requests - before
        self.gap_fills += 1
        with self._gap_lock:
            for t in gaps:  # REST answered [start, min(end, final)) for every ticker: never again
                self._answered[t] = max(self._answered.get(t, 0), min(end, final))
        logger.info("stream gaps %s..%s: %d tickers, %d bars backfilled",
                    from_epoch(start).isoformat(), from_epoch(end).isoformat(), len(gaps),
                    sum(counts.values()))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until queued gap backfills are done (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._gap_lock:
                if not self._gaps and not self._gap_busy:
                    return True
            time.sleep(0.02)
        return False
