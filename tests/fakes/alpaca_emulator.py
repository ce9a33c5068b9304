"""A loopback Alpaca emulator: trading REST v2, data REST v2 and both websockets on one port.

It follows ``shared/alpaca-protocol.md`` closely enough that the real alpaca-py clients and
websocket-client talk to it unchanged (``url_override`` / our settings' URL overrides):

- REST ``/v2/account``, ``/v2/clock``, ``/v2/calendar``, ``/v2/assets/{sym}``, ``/v2/orders``
  (submit, list, by id, ``:by_client_order_id``, cancel), ``/v2/positions``,
  ``/v2/stocks/bars`` (1Min, paginated, ``adjustment=raw|split``), and the data API's
  ``/v1/corporate-actions`` (alpaca-py's CorporateActionsClient; also ``/v1beta1``).
  ``schedule_split`` / ``schedule_action`` announce one; on its ex-date prices change by the
  ratio, positions split (whole shares, cash in lieu) and ``adjustment=split`` bars are
  adjusted, as fixtures/corporate_actions.json describes.
- Market data websocket ``/v2/{feed}``: JSON by default, msgpack when the handshake carries
  ``Content-Type: application/msgpack`` (alpaca-py's StockDataStream).
- Trade updates websocket ``/stream`` (JSON in binary frames, like paper).

Fault switches are plain methods/attributes (see ``Faults``). Time comes from ``now`` (a
callable), so a test can pin the emulator to any past session and share the clock with the app.

Run by hand: ``python -m tests.fakes.alpaca_emulator --port 8765 --auto``.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import re
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from db.calendar import EXCHANGE_TZ, MarketCalendar, nyse
from db.timeutil import parse_iso
from tests.fakes.bars import bar_values, extended_minutes, has_bar_minute, price_at
from tests.fakes.wsserver import (
    OP_BINARY,
    ConnectionClosed,
    WSConnection,
    accept_key,
)

logger = logging.getLogger(__name__)

TERMINAL = {"filled", "canceled", "expired", "rejected", "done_for_day"}


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_min(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


RESET = -1  # a handler's "status" for: drop the connection without answering
DATA_PATHS = ("/v2/stocks", "/v1/corporate-actions", "/v1beta1/corporate-actions")


@dataclass
class Faults:
    """Switches a test flips to make the emulator misbehave."""

    refuse_auth: bool = False  # market stream: 402 auth failed
    refuse_trade_auth: bool = False  # trade stream: unauthorized
    connection_limit: int = 1  # market sessions per account; the next one gets 406
    linger_406: int = 0  # the next N market auths get 406 (a dropped session lingering)
    silent: bool = False  # market stream stays open but sends no bars
    fail_status: int = 0  # answer the next ``fail_count`` matching REST requests with this
    fail_count: int = 0
    fail_prefix: str = "/v2"
    hang_seconds: float = 0.0  # every trading REST request answers this late (a dead gateway)
    clock_closed: bool = False  # /v2/clock says closed (an unscheduled closure)
    fail_after_accept: int = 0  # next N order submits are stored, then answered with 504
    accept_fail_status: int = 504  # what ``fail_after_accept`` answers (500, 503, 504)
    reset_after_accept: int = 0  # next N order submits are stored, then the connection drops
    slow_after_accept: float = 0.0  # next order submit is stored, then answered this late
    reject_next: str = ""  # next order submit: 403 with this message
    fill_mode: str = "fill"  # fill | partial | hold | reject_async | cancel
    partial_parts: int = 3
    fill_delay: float = 0.05
    skip_stream: set[tuple[str, int]] = field(default_factory=set)  # not on the stream only
    missing: set[tuple[str, int]] = field(default_factory=set)  # no trades: no bar anywhere
    # A late trade: the ``b`` bar leaves it out, a ``u`` correction after :30 has it (docs).
    late: set[tuple[str, int]] = field(default_factory=set)
    clock_skew: float = 0.0  # seconds Alpaca's clock (Date, X-RateLimit-Reset) is off ours
    rate_limit_reset_in: float = 2.0  # a 429's X-RateLimit-Reset, seconds after Alpaca's now
    # A real rate-limit counter: requests per ``rate_window`` s, trading and data API counted
    # apart; past it, 429 (0 = no limit; the X-RateLimit-* headers are sent either way).
    # Alpaca: "200 requests every minute per API key" on the trading API (docs:
    # alpaca.markets/docs/api-references/trading-api/, Rate Limit), 200 a minute on the free
    # data plan; X-RateLimit-Limit/Remaining/Reset on every response, Reset a Unix time in
    # seconds (docs.alpaca.markets/us/docs/broker-api-rate-limits).
    rate_limit: int = 0
    rate_window: float = 60.0
    forbid_reads: str = ""  # trading REST reads: 403 with code 40310000 and this message
    no_pong: bool = False  # both streams: websocket pings go unanswered (a dead path)
    # Market stream: 405 past this many bar symbols (0 = no limit). Alpaca's documented
    # default limits are on trades and quotes (30 on IEX), none on bars (docs: alpaca.markets/
    # docs/api-references/market-data-api/stock-pricing-data/realtime/): a plan set up on
    # request may differ, so the switch stays for the 405 path.
    symbol_limit: int = 0
    invalid_channels: set[str] = field(default_factory=set)  # subscribing them: 410
    # A duplicate client_order_id: HTTP 422 with this code/message (Alpaca: 40010001).
    duplicate_code: int = 40010001
    duplicate_message: str = "client_order_id must be unique"


# ``/v2/delayed_sip`` "is a 15-minute delayed SIP feed" (docs.alpaca.markets/docs/
# real-time-stock-pricing-data): a minute's bar goes out 15 minutes after the minute closes.
SIP_DELAY = 15 * 60


class _MarketSession:
    def __init__(self, conn: WSConnection, use_msgpack: bool, feed: str = "iex") -> None:
        self.conn = conn
        self.feed = feed  # the URL's last part: iex, sip, delayed_sip, test
        self.msgpack = use_msgpack
        self.authed = False
        self.bars: set[str] = set()
        self.updated: set[str] = set()
        self.statuses: set[str] = set()

    def encode(self, msgs: list[dict]) -> tuple[int, bytes]:
        if self.msgpack:
            import msgpack

            out = []
            for m in msgs:
                if "t" in m and isinstance(m["t"], str):
                    m = dict(m, t=msgpack.Timestamp.from_datetime(parse_iso(m["t"])))
                out.append(m)
            return OP_BINARY, msgpack.packb(out)
        return 0x1, json.dumps(msgs, separators=(",", ":")).encode()

    def send(self, msgs: list[dict], ping_after: bool = False) -> None:
        op, data = self.encode(msgs)
        self.conn.send(op, data, ping_after=ping_after)


class AlpacaEmulator:
    """The emulator. ``start()`` binds 127.0.0.1 on ``port`` (0 = a free one)."""

    def __init__(self, port: int = 0, *, key_id: str = "emu-key", secret_key: str = "emu-secret",
                 now: Callable[[], datetime] | None = None,
                 calendar: MarketCalendar | None = None, cash: float = 100_000.0,
                 realism: bool = False) -> None:
        self.key_id, self.secret_key = key_id, secret_key
        self.now = now or (lambda: datetime.now(UTC))
        self.calendar = calendar or nyse()
        self.faults = Faults()
        self.lock = threading.RLock()
        self.cash = cash
        self.account_id = str(uuid.uuid4())
        self.trading_blocked = False
        self.sip_plan = False  # the free plan: no SIP data newer than 15 minutes
        self.halted: set[str] = set()
        self.assets: dict[str, dict] = {}
        for sym, exch in (("AAPL", "NASDAQ"), ("MSFT", "NASDAQ"), ("NVDA", "NASDAQ"),
                          ("SPY", "ARCA"), ("GE", "NYSE"), ("FAKEPACA", "NASDAQ")):
            self.add_asset(sym, exch)
        self.add_asset("OLDCO", "NYSE", status="inactive", tradable=False)
        self.add_asset("NOTRD", "NYSE", tradable=False)
        self.orders: dict[str, dict] = {}  # id -> order
        self.by_cid: dict[str, str] = {}
        self.positions: dict[str, tuple[float, float]] = {}  # symbol -> (qty, avg_entry)
        self.market_sessions: list[_MarketSession] = []
        self.trade_conns: list[WSConnection] = []
        self._corrections: list[tuple[str, int]] = []  # (ticker, minute) owed a ``u`` bar
        self.illiquid: dict[str, float] = {}  # ticker -> chance that a minute has a trade
        self.realism = realism  # orders accepted/pending_new, queued, canceled at the close
        if realism:  # Alpaca's documented limit, counted for real (see Faults.rate_limit)
            self.faults.rate_limit = 200
        self._timers: list[threading.Timer] = []
        self.requests: list[tuple[str, str]] = []  # (method, path) log for assertions
        self.queries: list[str] = []  # "path?k=v&..." log for assertions
        self.order_posts = 0
        self._rate: dict[bool, tuple[float, int]] = {}  # is_data -> (window start, requests)
        self.rate_limited = 0  # requests answered 429 by the counter
        self.peak_rate = {False: 0, True: 0}  # is_data -> most requests seen in one window
        self.market_auths = 0  # auth attempts on the market stream (storm detection)
        self.trade_auths = 0
        # Corporate actions: (group, item) as /v1/corporate-actions lists them; the ids of
        # splits already applied to the positions.
        self.corporate: list[tuple[str, dict]] = []
        self._settled: set[str] = set()
        self._server: ThreadingHTTPServer | None = None
        self._port = port
        self._auto_stop = threading.Event()

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> AlpacaEmulator:
        emu = self

        class Handler(_Handler):
            emulator = emu

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="alpaca-emulator",
                         daemon=True).start()
        if self.realism:
            threading.Thread(target=self._follow_clock, name="alpaca-emulator-clock",
                             daemon=True).start()
        logger.info("Alpaca emulator on %s", self.url)
        return self

    def _follow_clock(self) -> None:
        while not self._auto_stop.wait(0.05):
            try:
                self.tick()
            except Exception:
                logger.exception("emulator clock step failed")

    def stop(self) -> None:
        self._auto_stop.set()
        for t in self._timers:
            t.cancel()
        self.drop_market_connections()
        self.drop_trade_connections()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> AlpacaEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/v2/iex"

    @property
    def trade_stream_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/stream"

    def setting_values(self) -> dict[str, str]:
        """Dotted settings that point the app at this emulator (``load_settings`` overrides)."""
        return {
            "alpaca.key_id": self.key_id, "alpaca.secret_key": self.secret_key,
            "alpaca.trading_url": self.url, "alpaca.data_url": self.url,
            "alpaca.stream_url": self.stream_url, "alpaca.trade_stream_url": self.trade_stream_url,
        }

    # --- reference data ----------------------------------------------------------------------
    def add_asset(self, symbol: str, exchange: str = "NASDAQ", *, status: str = "active",
                  tradable: bool = True, fractionable: bool = True) -> None:
        self.assets[symbol] = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)), "class": "us_equity",
            "exchange": exchange, "symbol": symbol, "name": f"{symbol} Inc.", "status": status,
            "tradable": tradable, "marginable": True, "shortable": True,
            "easy_to_borrow": True, "fractionable": fractionable, "maintenance_margin_requirement": 30,
            "attributes": [],
        }

    def bar(self, ticker: str, ts: int, adjusted: bool = False) -> dict | None:
        """The bar Alpaca would report for ``ticker`` at minute ``ts`` (None: no trades).
        An illiquid ticker trades in a fixed pseudo-random share of minutes (IEX: a minute
        without a trade has no bar, on the stream and in REST alike)."""
        if (ticker, ts) in self.faults.missing or not has_bar_minute(self.calendar, ts):
            return None
        chance = self.illiquid.get(ticker)
        if chance is not None and zlib.crc32(f"{ticker}:{ts}".encode()) % 1000 >= chance * 1000:
            return None
        o, h, low, c, v, n, vw = bar_values(ticker, ts)
        k = self.split_factor(ticker, ts, adjusted)
        if k != 1.0:
            o, h, low, c, vw = (round(x * k, 4) for x in (o, h, low, c, vw))
            v = int(round(v / k))
        return {"t": iso_min(ts), "o": o, "h": h, "l": low, "c": c, "v": v, "n": n, "vw": vw}

    def price(self, symbol: str) -> float:
        ts = int(self.now().timestamp())
        return round(price_at(symbol, ts) * self.split_factor(symbol, ts), 2)

    # --- corporate actions ------------------------------------------------------------------
    def schedule_split(self, symbol: str, ex_date: str, new_rate: float,
                       old_rate: float = 1.0) -> dict:
        """Announce a split (the fault switch): forward when new_rate > old_rate. From its
        ex-date prices are x old/new and positions x new/old (whole shares, cash in lieu)."""
        group = "forward_splits" if new_rate > old_rate else "reverse_splits"
        item = {"id": str(uuid.uuid4()), "symbol": symbol, "new_rate": new_rate,
                "old_rate": old_rate, "process_date": ex_date, "ex_date": ex_date,
                "record_date": ex_date, "payable_date": ex_date}
        if group == "forward_splits":
            item["cusip"] = "000000000"
            item["due_bill_redemption_date"] = ex_date
        else:
            item["old_cusip"], item["new_cusip"] = "000000000", "000000001"
        with self.lock:
            self.corporate.append((group, item))
        return item

    def schedule_action(self, group: str, item: dict) -> dict:
        """Announce any other action (e.g. ``cash_dividends``, ``cash_mergers``)."""
        item = {"id": str(uuid.uuid4()), **item}
        with self.lock:
            self.corporate.append((group, item))
        return item

    def _splits(self, symbol: str) -> list[tuple[int, float]]:
        out = []
        for group, it in self.corporate:
            if group in ("forward_splits", "reverse_splits") and it["symbol"] == symbol:
                ex = datetime.fromisoformat(it["ex_date"]).replace(tzinfo=EXCHANGE_TZ)
                out.append((int(ex.timestamp()), it["old_rate"] / it["new_rate"]))
        return out

    def split_factor(self, symbol: str, ts: int, adjusted: bool = False) -> float:
        """Price factor of minute ``ts``: raw data changes on the ex-date; split-adjusted
        data is on today's basis for every minute."""
        now = int(self.now().timestamp())
        k = 1.0
        for ex_ts, f in self._splits(symbol):
            if ex_ts <= ts or (adjusted and ex_ts <= now):
                k *= f
        return k

    def settle_corporate(self) -> None:
        """Apply due splits and cash dividends to the account (Alpaca does it before the
        open of the ex-date / on the payable date)."""
        today = self.now().astimezone(EXCHANGE_TZ).date().isoformat()
        with self.lock:
            for group, it in self.corporate:
                if it["id"] in self._settled:
                    continue
                if group in ("forward_splits", "reverse_splits") and it["ex_date"] <= today:
                    pos = self.positions.get(it["symbol"])
                    if pos:
                        r = it["new_rate"] / it["old_rate"]
                        exact = pos[0] * r
                        whole = float(int(exact + 1e-9))
                        self.cash += (exact - whole) * self.price(it["symbol"])
                        self.positions[it["symbol"]] = (whole, pos[1] / r)
                    self._settled.add(it["id"])
                elif group == "cash_dividends" and (it.get("payable_date") or "9") <= today:
                    pos = self.positions.get(it["symbol"])
                    if pos:
                        self.cash += pos[0] * float(it["rate"])
                    self._settled.add(it["id"])

    def _corporate_actions(self, q: dict[str, str]) -> tuple[int, Any]:
        symbols = {s for s in q.get("symbols", "").split(",") if s}
        types = {t for t in q.get("types", "").split(",") if t}
        today = self.now().astimezone(EXCHANGE_TZ).date().isoformat()
        start, end = q.get("start", today), q.get("end", today)
        out: dict[str, list] = {}
        with self.lock:
            for group, it in self.corporate:
                sym = next((it[k] for k in ("symbol", "old_symbol", "acquiree_symbol",
                                            "source_symbol") if k in it), None)
                day = next((it[k] for k in ("ex_date", "effective_date", "process_date")
                            if k in it), "")
                if symbols and sym not in symbols:
                    continue
                if types and group[:-1] not in types:  # forward_splits -> forward_split
                    continue
                if not start <= day <= end:
                    continue
                out.setdefault(group, []).append(dict(it))
        return 200, {"corporate_actions": out, "next_page_token": None}

    # --- stream control -------------------------------------------------------------------
    def emit_minute(self, ts: int, tickers: list[str] | None = None,
                    feeds: tuple[str, ...] | None = None) -> int:
        """Send the bars of minute ``ts`` to every authenticated market session subscribed to
        them (after the minute closes, as Alpaca does). Returns the number of bars sent.
        ``feeds``: only sessions on these feeds. A ``delayed_sip`` session gets a minute only
        once it is ``SIP_DELAY`` old on the emulator's clock (never a fresher one).

        A minute with a late trade (``faults.late``) goes out without it; the trade comes in
        an updated bar ``u`` after the next :30 (``emit_corrections``), as the docs say."""
        sent = 0
        with self.lock:
            sessions = [s for s in self.market_sessions if s.authed]
        if self.faults.silent:
            return 0
        now_ts = int(self.now().timestamp())
        for s in sessions:
            if feeds is not None and s.feed not in feeds:
                continue
            if s.feed == "delayed_sip" and ts + 60 + SIP_DELAY > now_ts:
                continue
            wanted = sorted(tickers if tickers is not None else s.bars)
            msgs = []
            for t in wanted:
                if t not in s.bars or (t, ts) in self.faults.skip_stream:
                    continue
                b = self.bar(t, ts)
                if b is None:
                    continue
                if (t, ts) in self.faults.late:
                    b = self.bar_before_late_trade(b)
                    with self.lock:
                        if (t, ts) not in self._corrections:
                            self._corrections.append((t, ts))
                msgs.append(dict(b, T="b", S=t))
            if msgs:
                try:
                    s.send(msgs)
                    sent += len(msgs)
                except ConnectionClosed:
                    pass
        return sent

    @staticmethod
    def bar_before_late_trade(b: dict) -> dict:
        """The bar as it stood before its late trade (which closed the minute)."""
        return dict(b, c=b["o"], v=max(1, b["v"] // 2), n=max(1, b["n"] // 2))

    def emit_corrections(self) -> int:
        """The ``u`` updated bars due after a :30 mark (late trades); returns how many."""
        with self.lock:
            due, self._corrections = self._corrections, []
        return sum(self.emit_correction(t, ts) for t, ts in due)

    def emit_correction(self, ticker: str, ts: int, **changes: float) -> int:
        """An ``updatedBars`` message (a late trade changed minute ``ts``) to sessions that
        subscribed updatedBars for ``ticker``; returns how many got it."""
        b = self.bar(ticker, ts)
        if b is None:
            return 0
        msg = dict(b, T="u", S=ticker, **changes)
        with self.lock:
            sessions = [s for s in self.market_sessions if s.authed and ticker in s.updated]
        for s in sessions:
            try:
                s.send([msg])
            except ConnectionClosed:
                pass
        return len(sessions)

    def emit_raw(self, msgs: list[dict], ping_after: bool = False) -> None:
        """Send prepared data messages as one frame to every authenticated market session
        (``ping_after``: a websocket ping right behind it, in the same TCP write)."""
        with self.lock:
            sessions = [s for s in self.market_sessions if s.authed]
        for s in sessions:
            try:
                s.send(msgs, ping_after=ping_after)
            except ConnectionClosed:
                pass

    def drop_market_connections(self) -> int:
        with self.lock:
            sessions, self.market_sessions = self.market_sessions, []
        for s in sessions:
            s.conn.abort()
        return len(sessions)

    def drop_trade_connections(self) -> int:
        with self.lock:
            conns, self.trade_conns = self.trade_conns, []
        for c in conns:
            c.abort()
        return len(conns)

    def subscribed(self) -> set[str]:
        with self.lock:
            out: set[str] = set()
            for s in self.market_sessions:
                if s.authed:
                    out |= s.bars
            return out

    def authed_market_sessions(self) -> int:
        with self.lock:
            return sum(1 for s in self.market_sessions if s.authed)

    def run_auto(self, offset: float = 0.3) -> None:
        """Manual runs: emit each minute's bars just after it closes and the updated bars
        just after the :30 mark, on the wall clock; order events follow the clock."""
        while not self._auto_stop.is_set():
            now = time.time()
            nxt = (int(now) // 30 + 1) * 30
            if self._auto_stop.wait(nxt - now + offset):
                return
            if nxt % 60 == 0:
                self.emit_minute(nxt - 60)
                self.emit_minute(nxt - 60 - SIP_DELAY, feeds=("delayed_sip",))
            else:
                self.emit_corrections()
            self.tick()

    # --- orders -----------------------------------------------------------------------------
    def _order_json(self, o: dict) -> dict:
        return dict(o)

    def _publish(self, event: str, order: dict, price: float | None = None,
                 qty: float | None = None) -> None:
        data: dict[str, Any] = {"event": event, "execution_id": str(uuid.uuid4()),
                                "order": dict(order), "timestamp": iso(self.now())}
        if price is not None:
            data["price"] = str(price)
            data["qty"] = str(qty)
            data["position_qty"] = str(self.positions.get(order["symbol"], (0.0, 0.0))[0])
        payload = json.dumps({"stream": "trade_updates", "data": data}).encode()
        with self.lock:
            conns = list(self.trade_conns)
        for c in conns:
            try:
                c.send_binary(payload)
            except ConnectionClosed:
                pass

    def _later(self, delay: float, fn: Callable[[], None]) -> None:
        t = threading.Timer(delay, fn)
        t.daemon = True
        self._timers.append(t)
        t.start()

    def find_order(self, key: str) -> dict | None:
        with self.lock:
            return self.orders.get(key) or self.orders.get(self.by_cid.get(key, ""))

    def fill_order(self, key: str, qty: float | None = None, price: float | None = None) -> dict:
        """Fill (part of) an open order now; ``key`` is its id or client order id."""
        with self.lock:
            o = self.find_order(key)
            if o is None:
                raise KeyError(key)
            if o["status"] in TERMINAL:
                return o
            filled = float(o["filled_qty"])
            total = float(o["qty"])
            q = total - filled if qty is None else min(qty, total - filled)
            p = self.price(o["symbol"]) if price is None else price
            prev_avg = float(o["filled_avg_price"] or 0.0)
            new_filled = filled + q
            avg = (prev_avg * filled + p * q) / new_filled
            now = iso(self.now())
            o["filled_qty"] = _num(new_filled)
            o["filled_avg_price"] = str(round(avg, 6))
            o["updated_at"] = now
            done = new_filled >= total
            o["status"] = "filled" if done else "partially_filled"
            if done:
                o["filled_at"] = now
            sign = 1 if o["side"] == "buy" else -1
            pq, pavg = self.positions.get(o["symbol"], (0.0, 0.0))
            nq = pq + sign * q
            if sign > 0 and nq:
                pavg = (pq * pavg + q * p) / nq
            self.positions[o["symbol"]] = (nq, pavg if nq else 0.0)
            if not nq:
                del self.positions[o["symbol"]]
            self.cash -= sign * q * p
            self._publish("fill" if done else "partial_fill", o, price=p, qty=q)
            return o

    def set_order_status(self, key: str, status: str) -> dict:
        """Move an open order to canceled / expired / rejected and tell the trade stream."""
        with self.lock:
            o = self.find_order(key)
            if o is None:
                raise KeyError(key)
            if o["status"] in TERMINAL:
                return o
            o["status"] = status
            o["updated_at"] = iso(self.now())
            if status == "canceled":
                o["canceled_at"] = o["updated_at"]
            elif status == "expired":
                o["expired_at"] = o["updated_at"]
            elif status == "rejected":
                o["failed_at"] = o["updated_at"]
            self._publish(status, o)
            return o

    def _route(self, oid: str) -> None:
        """pending_new/accepted -> new (routed to the venue), then fills as configured."""
        with self.lock:
            o = self.orders[oid]
            if o["status"] in TERMINAL or o["status"] == "new":
                return
            o["status"] = "new"
            o["updated_at"] = iso(self.now())
            self._publish("new", o)
        self._schedule_fills(o)

    def tick(self) -> None:
        """Follow the clock (realism): queued orders go out at the open, day orders still open
        after the close are canceled (docs: time in force ``day``)."""
        now = self.now()
        is_open = self.calendar.is_open(now)
        with self.lock:
            orders = [o for o in self.orders.values() if o["status"] not in TERMINAL]
        for o in orders:
            if o["status"] == "accepted" and is_open:
                self._route(o["id"])
            elif not is_open and o["time_in_force"] == "day" and o["status"] != "accepted":
                session = self.calendar.current_or_next_session(parse_iso(o["submitted_at"]))
                if now >= session.close:
                    self.set_order_status(o["id"], "canceled")

    def _schedule_fills(self, o: dict) -> None:
        f = self.faults
        oid = o["id"]
        if o["symbol"] in self.halted:
            return  # no trading while halted: filled after ``resume``
        if f.fill_mode == "fill":
            self._later(f.fill_delay, lambda: self.fill_order(oid))
        elif f.fill_mode == "partial":
            total = float(o["qty"])
            parts = max(1, min(f.partial_parts, int(total)))
            base = self.price(o["symbol"])
            sizes = [total // parts] * parts
            sizes[-1] += total - sum(sizes)
            for i, q in enumerate(sizes):
                self._later(f.fill_delay * (i + 1),
                            lambda q=q, i=i: self.fill_order(oid, qty=q, price=round(base + 0.01 * i, 2)))
        elif f.fill_mode == "reject_async":
            self._later(f.fill_delay, lambda: self.set_order_status(oid, "rejected"))
        elif f.fill_mode == "cancel":
            self._later(f.fill_delay, lambda: self.set_order_status(oid, "canceled"))
        # "hold": stays open until a test calls fill_order / set_order_status

    def submit(self, body: dict) -> tuple[int, dict]:
        """POST /v2/orders."""
        f = self.faults
        with self.lock:
            self.order_posts += 1
            sym = str(body.get("symbol", "")).upper()
            cid = str(body.get("client_order_id") or uuid.uuid4())
            if len(cid) > 48:
                return 422, {"code": 40010001, "message": "client_order_id must be no more than 48 characters"}
            if cid in self.by_cid:
                return 422, {"code": f.duplicate_code, "message": f.duplicate_message}
            asset = self.assets.get(sym)
            if asset is None:
                return 422, {"code": 42210000, "message": f'asset "{sym}" not found'}
            if asset["status"] != "active" or not asset["tradable"]:
                return 422, {"code": 42210000, "message": f"asset {sym} is not tradable"}
            try:
                qty = float(body.get("qty"))
            except (TypeError, ValueError):
                return 422, {"code": 40010001, "message": "qty is required"}
            side = body.get("side")
            if side not in ("buy", "sell") or qty <= 0:
                return 422, {"code": 40010001, "message": "invalid order"}
            if body.get("type", "market") != "market" or body.get("time_in_force") != "day":
                return 422, {"code": 42210000, "message": "only market day orders are emulated"}
            if f.reject_next:
                msg, f.reject_next = f.reject_next, ""
                return 403, {"code": 40310000, "message": msg}
            if self.trading_blocked:
                return 403, {"code": 40310000, "message": "trading is blocked for this account"}
            price = self.price(sym)
            if side == "buy" and qty * price > self.cash:
                return 403, {"code": 40310000, "message": "insufficient buying power",
                             "buying_power": str(round(self.cash, 2)), "cost_basis": str(round(qty * price, 2))}
            held = self.positions.get(sym, (0.0, 0.0))[0]
            if side == "sell" and qty > held:
                return 403, {"code": 40310000, "message":
                             f"insufficient qty available for order (requested: {_num(qty)}, available: {_num(held)})"}
            now = iso(self.now())
            o = {
                "id": str(uuid.uuid4()), "client_order_id": cid, "created_at": now,
                "updated_at": now, "submitted_at": now, "filled_at": None, "expired_at": None,
                "expires_at": None, "canceled_at": None, "failed_at": None, "replaced_at": None,
                "replaced_by": None, "replaces": None, "asset_id": asset["id"], "symbol": sym,
                "asset_class": "us_equity", "notional": None, "qty": _num(qty),
                "filled_qty": "0", "filled_avg_price": None, "order_class": "", "order_type": "market",
                "type": "market", "side": side, "position_intent": f"{side}_to_open",
                "time_in_force": "day", "limit_price": None, "stop_price": None, "status": "new",
                "extended_hours": False, "legs": None, "trail_percent": None, "trail_price": None,
                "hwm": None,
            }
            self.orders[o["id"]] = o
            self.by_cid[cid] = o["id"]
            if self.realism:
                # Docs (orders-at-alpaca, Order Lifecycle): outside the session an order is
                # ``accepted`` (queued for the next open); otherwise it goes through
                # ``pending_new`` (routed) to ``new`` before it fills.
                if not self.calendar.is_open(self.now()):
                    o["status"] = "accepted"
                    self._publish("accepted", o)
                else:
                    o["status"] = "pending_new"
                    self._publish("pending_new", o)
                    self._later(f.fill_delay / 2, lambda oid=o["id"]: self._route(oid))
            else:
                self._publish("new", o)
                self._schedule_fills(o)
            if f.fail_after_accept > 0:
                f.fail_after_accept -= 1
                st = f.accept_fail_status
                return st, {"code": st * 100000, "message": "gateway timeout" if st == 504
                            else "internal server error"}
            if f.reset_after_accept > 0:
                f.reset_after_accept -= 1
                return RESET, None
            slow, f.slow_after_accept = f.slow_after_accept, 0.0
            out = dict(o)
        if slow:
            time.sleep(slow)  # outside the lock: the client times out, others carry on
        return 200, out

    # --- REST dispatch ----------------------------------------------------------------------
    def handle_rest(self, method: str, path: str, query: dict[str, str],
                    body: dict | None, headers: Any) -> tuple:
        """Count a request with valid keys against its rate-limit window, then answer it with
        the X-RateLimit-* headers; past ``faults.rate_limit`` it is answered 429, not acted on."""
        if (headers.get("APCA-API-KEY-ID") != self.key_id
                or headers.get("APCA-API-SECRET-KEY") != self.secret_key):
            return self._answer_rest(method, path, query, body, headers)
        is_data = path.startswith(DATA_PATHS)
        over, rate = self._rate_count(is_data)
        if over:
            with self.lock:
                self.rate_limited += 1
                self.requests.append((method, path))
                self.queries.append(path + "?" + "&".join(f"{k}={v}"
                                                          for k, v in sorted(query.items())))
            return 429, ({"message": "too many requests."} if is_data else
                         {"code": 42910000, "message": "rate limit exceeded"}), rate
        out = self._answer_rest(method, path, query, body, headers)
        extra = out[2] if len(out) > 2 and out[2] else {}
        return out[0], out[1], {**rate, **extra}

    def _rate_count(self, is_data: bool) -> tuple[bool, dict[str, str]]:
        """One request in the data or trading window: (past the limit?, its headers)."""
        f = self.faults
        limit = f.rate_limit or 200
        now = self.alpaca_time()
        with self.lock:
            start, n = self._rate.get(is_data, (now, 0))
            if now >= start + f.rate_window:
                start, n = now, 0
            n += 1
            self._rate[is_data] = (start, n)
            self.peak_rate[is_data] = max(self.peak_rate[is_data], n)
        return bool(f.rate_limit) and n > limit, {
            "X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(0, limit - n)),
            "X-RateLimit-Reset": str(int(start + f.rate_window + 0.999))}

    def _answer_rest(self, method: str, path: str, query: dict[str, str],
                     body: dict | None, headers: Any) -> tuple:
        with self.lock:
            self.requests.append((method, path))
            self.queries.append(path + "?" + "&".join(f"{k}={v}" for k, v in sorted(query.items())))
        is_data = path.startswith(DATA_PATHS)
        if (headers.get("APCA-API-KEY-ID") != self.key_id
                or headers.get("APCA-API-SECRET-KEY") != self.secret_key):
            if is_data:  # the data API answers 403 for bad keys (docs: market-data-faq)
                return 403, {"message": "forbidden"}
            return 401, {"code": 40110000, "message": "request is not authorized"}
        f = self.faults
        if f.hang_seconds and not is_data:
            time.sleep(f.hang_seconds)  # outside the lock: the client times out
        with self.lock:
            if f.fail_count > 0 and path.startswith(f.fail_prefix):
                f.fail_count -= 1
                st = f.fail_status
                if st == 429:
                    return st, ({"message": "too many requests."} if is_data else
                                {"code": 42910000, "message": "rate limit exceeded"}), \
                        self.rate_headers(0, f.rate_limit_reset_in)
                if is_data:
                    return st, {"message": "too many requests." if st == 429 else "internal error"}
                return st, {"code": st * 100000, "message":
                            "rate limit exceeded" if st == 429 else "internal server error"}
        if f.forbid_reads and method == "GET" and not is_data:
            return 403, {"code": 40310000, "message": f.forbid_reads}
        if path == "/v2/account" and method == "GET":
            self.settle_corporate()
            return 200, self._account()
        if path == "/v2/clock":
            return 200, self._clock()
        if path == "/v2/calendar":
            return 200, self._calendar(query)
        if path.startswith("/v2/assets/"):
            a = self.assets.get(path.rsplit("/", 1)[1].upper())
            if a is None:
                return 404, {"code": 40410000, "message": "asset not found"}
            return 200, a
        if path == "/v2/orders" and method == "POST":
            return self.submit(body or {})
        if path == "/v2/orders" and method == "GET":
            return 200, self._list_orders(query)
        if path == "/v2/orders:by_client_order_id":
            o = self.find_order_by_cid(query.get("client_order_id", ""))
            return (200, o) if o else (404, {"code": 40410000, "message": "order not found"})
        if path.startswith("/v2/orders/"):
            oid = path.rsplit("/", 1)[1]
            with self.lock:
                o = self.orders.get(oid)
                if o is None:
                    return 404, {"code": 40410000, "message": "order not found"}
                if method == "DELETE":
                    if o["status"] in TERMINAL:
                        return 422, {"code": 42210000, "message": "order is not cancelable"}
                    self.set_order_status(oid, "canceled")
                    return 204, None
                return 200, dict(o)
        if path == "/v2/positions":
            self.settle_corporate()
            return 200, self._positions()
        if path in ("/v1/corporate-actions", "/v1beta1/corporate-actions"):
            return self._corporate_actions(query)
        if path == "/v2/stocks/bars":
            return self._bars(query)
        return 404, {"code": 40410000, "message": f"no route {method} {path}"}

    def alpaca_time(self) -> float:
        """Alpaca's wall clock (epoch s): ours plus the skew fault."""
        return time.time() + self.faults.clock_skew

    def rate_headers(self, remaining: int, reset_in: float = 60.0) -> dict[str, str]:
        """X-RateLimit-* as Alpaca sends them on every response; Reset is an epoch second on
        Alpaca's clock (docs: broker-api-rate-limits)."""
        return {"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(int(self.alpaca_time() + reset_in))}

    def find_order_by_cid(self, cid: str) -> dict | None:
        with self.lock:
            oid = self.by_cid.get(cid)
            return dict(self.orders[oid]) if oid else None

    def _account(self) -> dict:
        with self.lock:
            mv = sum(q * self.price(s) for s, (q, _) in self.positions.items())
            eq = self.cash + mv
            return {
                "id": self.account_id, "account_number": "PA1EMULATOR", "status": "ACTIVE",
                "crypto_status": "ACTIVE", "currency": "USD", "cash": _money(self.cash),
                "buying_power": _money(max(self.cash, 0.0)), "regt_buying_power": _money(self.cash),
                "non_marginable_buying_power": _money(self.cash), "equity": _money(eq),
                "last_equity": _money(eq), "portfolio_value": _money(eq),
                "long_market_value": _money(mv), "short_market_value": "0",
                "multiplier": "1", "initial_margin": "0", "maintenance_margin": "0",
                "sma": "0", "accrued_fees": "0", "trading_blocked": self.trading_blocked,
                "transfers_blocked": False, "account_blocked": False,
                "trade_suspended_by_user": False, "shorting_enabled": False,
                "created_at": "2024-01-02T15:00:00Z",
            }

    def _clock(self) -> dict:
        now = self.now()
        def et(t: datetime) -> str:
            return t.astimezone(EXCHANGE_TZ).isoformat()
        return {"timestamp": et(now),
                "is_open": self.calendar.is_open(now) and not self.faults.clock_closed,
                "next_open": et(self.calendar.next_open(now)),
                "next_close": et(self.calendar.next_close(now))}

    def _calendar(self, q: dict[str, str]) -> list[dict]:
        today = self.now().astimezone(EXCHANGE_TZ).date()
        start = date.fromisoformat(q.get("start", str(today))[:10])
        end = date.fromisoformat(q.get("end", str(today + timedelta(days=30)))[:10])
        return [{"date": str(s.day), "open": s.open.astimezone(EXCHANGE_TZ).strftime("%H:%M"),
                 "close": s.close.astimezone(EXCHANGE_TZ).strftime("%H:%M"),
                 "session_open": "0400", "session_close": "2000", "settlement_date": str(s.day)}
                for s in self.calendar.sessions_between(start, end)]

    def _list_orders(self, q: dict[str, str]) -> list[dict]:
        status = q.get("status", "open")
        limit = int(q.get("limit", 50))
        with self.lock:
            out = [dict(o) for o in self.orders.values()
                   if status == "all" or (status == "open") == (o["status"] not in TERMINAL)]
        out.sort(key=lambda o: o["submitted_at"], reverse=True)
        return out[:limit]

    def _positions(self) -> list[dict]:
        with self.lock:
            out = []
            for s, (q, avg) in sorted(self.positions.items()):
                p = self.price(s)
                a = self.assets[s]
                out.append({
                    "asset_id": a["id"], "symbol": s, "exchange": a["exchange"],
                    "asset_class": "us_equity", "asset_marginable": True,
                    "avg_entry_price": str(round(avg, 6)), "qty": _num(q),
                    "qty_available": _num(q), "side": "long" if q > 0 else "short",
                    "market_value": _money(q * p), "cost_basis": _money(q * avg),
                    "unrealized_pl": _money(q * (p - avg)), "unrealized_plpc": "0",
                    "unrealized_intraday_pl": "0", "unrealized_intraday_plpc": "0",
                    "current_price": str(p), "lastday_price": str(p), "change_today": "0",
                })
            return out

    def _bars(self, q: dict[str, str]) -> tuple[int, Any]:
        if q.get("timeframe", "1Min") not in ("1Min", "1T"):
            return 422, {"message": "only 1Min bars are emulated"}
        symbols = [s for s in q.get("symbols", "").split(",") if s]
        if not symbols:
            return 422, {"message": "symbols is required"}
        feed = q.get("feed", "sip")
        if feed not in ("iex", "sip", "otc", "boats", "overnight"):
            return 400, {"message": f"invalid feed: {feed}"}
        limit = min(int(q.get("limit") or 1000), 10000)
        adjusted = q.get("adjustment", "raw") in ("split", "all")
        now_ts = int(self.now().timestamp())
        today = self.now().astimezone(EXCHANGE_TZ).replace(hour=0, minute=0, second=0)
        start = _parse_time(q.get("start")) if q.get("start") else int(today.timestamp())
        end = _parse_time(q.get("end")) if q.get("end") else now_ts
        if feed == "sip" and not self.sip_plan and end > now_ts - 15 * 60:
            return 403, {"message": "subscription does not permit querying recent SIP data"}
        end = min(end, now_ts - now_ts % 60)  # only closed minutes
        si, from_ts = 0, start
        if q.get("page_token"):
            si, from_ts = (int(x) for x in base64.b64decode(q["page_token"]).decode().split(":"))
        out: dict[str, list] = {}
        n = 0
        token = None
        while si < len(symbols):
            sym = symbols[si]
            for ts in extended_minutes(self.calendar, from_ts, end):
                if n >= limit:
                    token = base64.b64encode(f"{si}:{ts}".encode()).decode()
                    break
                b = self.bar(sym, ts, adjusted)
                if b is not None:
                    out.setdefault(sym, []).append(b)
                    n += 1
            if token:
                break
            si, from_ts = si + 1, start
        return 200, {"bars": out, "next_page_token": token}

    # --- websocket sessions -----------------------------------------------------------------
    def market_session(self, conn: WSConnection, use_msgpack: bool, feed: str = "iex") -> None:
        s = _MarketSession(conn, use_msgpack, feed)
        conn.answer_pings = lambda: not self.faults.no_pong
        with self.lock:
            self.market_sessions.append(s)
        try:
            s.send([{"T": "success", "msg": "connected"}])
            while True:
                op, payload = conn.recv()
                try:
                    if use_msgpack:
                        import msgpack

                        msg = msgpack.unpackb(payload)
                    else:
                        msg = json.loads(payload)
                except Exception:
                    s.send([{"T": "error", "code": 400, "msg": "invalid syntax"}])
                    continue
                self._market_action(s, msg)
        except ConnectionClosed:
            pass
        finally:
            with self.lock:
                if s in self.market_sessions:
                    self.market_sessions.remove(s)

    def _market_action(self, s: _MarketSession, msg: Any) -> None:
        action = msg.get("action") if isinstance(msg, dict) else None
        f = self.faults
        if action == "auth":
            with self.lock:
                self.market_auths += 1
                if s.authed:
                    s.send([{"T": "error", "code": 403, "msg": "already authenticated"}])
                    return
                others = sum(1 for x in self.market_sessions if x.authed)
                if f.refuse_auth or msg.get("key") != self.key_id or msg.get("secret") != self.secret_key:
                    err = {"T": "error", "code": 402, "msg": "auth failed"}
                elif f.linger_406 > 0 or others >= f.connection_limit:
                    f.linger_406 = max(0, f.linger_406 - 1)
                    err = {"T": "error", "code": 406, "msg": "connection limit exceeded"}
                else:
                    s.authed = True
                    err = None
            if err:
                s.send([err])
                s.conn.close(1008, err["msg"])
                raise ConnectionClosed()
            s.send([{"T": "success", "msg": "authenticated"}])
        elif action in ("subscribe", "unsubscribe"):
            if not s.authed:
                s.send([{"T": "error", "code": 401, "msg": "not authenticated"}])
                return
            err = self._subscription_error(s, action, msg)
            if err is not None:  # docs: the subscriptions stay as they were before
                s.send([{"T": "error", "code": err[0], "msg": err[1]}])
                return
            with self.lock:
                for key, target in (("bars", s.bars), ("updatedBars", s.updated),
                                    ("statuses", s.statuses)):
                    syms = set(msg.get(key) or [])
                    if action == "subscribe":
                        target |= syms
                    else:
                        target -= syms
            s.send([{"T": "subscription", "trades": [], "quotes": [], "bars": sorted(s.bars),
                     "updatedBars": sorted(s.updated), "dailyBars": [],
                     "statuses": sorted(s.statuses), "lulds": [], "corrections": [],
                     "cancelErrors": []}])
        else:
            s.send([{"T": "error", "code": 400, "msg": "invalid syntax"}])

    def _subscription_error(self, s: _MarketSession, action: str,
                            msg: dict) -> tuple[int, str] | None:
        """The documented refusals of a subscribe (docs: streaming-market-data, Errors)."""
        if action != "subscribe":
            return None
        f = self.faults
        for key, syms in msg.items():
            if key == "action":
                continue
            if not isinstance(syms, list):
                return 400, "invalid syntax"
            for sym in syms:  # a symbol in an invalid format: 400 invalid syntax
                if sym != "*" and not re.fullmatch(r"[A-Z][A-Z0-9.]{0,15}", str(sym)):
                    return 400, "invalid syntax"
            if syms and key in f.invalid_channels:
                return 410, "invalid subscribe action for this feed"
        if f.symbol_limit:
            with self.lock:
                after = s.bars | set(msg.get("bars") or [])
            if len(after) > f.symbol_limit:
                return 405, "symbol limit exceeded"
        return None

    def emit_status(self, ticker: str, sc: str, sm: str, rc: str = "", rm: str = "",
                    tape: str = "C") -> int:
        """A trading status message (``T: s``) to sessions subscribed to ``statuses`` for
        ``ticker``, shaped as in the docs (real-time-stock-pricing-data, Trading Status)."""
        msg = {"T": "s", "S": ticker, "sc": sc, "sm": sm, "rc": rc, "rm": rm,
               "t": iso(self.now()), "z": tape}
        with self.lock:
            sessions = [x for x in self.market_sessions if x.authed and ticker in x.statuses]
        for x in sessions:
            try:
                x.send([msg])
            except ConnectionClosed:
                pass
        return len(sessions)

    def halt(self, ticker: str, luld: bool = False) -> int:
        """Halt ``ticker`` (or a LULD volatility pause): a status message, and no fills."""
        with self.lock:
            self.halted.add(ticker)
        if luld:
            return self.emit_status(ticker, "P", "Volatility Trading Pause", "LUDP",
                                    "Volatility Trading Pause")
        return self.emit_status(ticker, "H", "Trading Halt", "T12",
                                "Trading Halted; For information requested by NASDAQ")

    def resume(self, ticker: str) -> int:
        with self.lock:
            self.halted.discard(ticker)
            waiting = [o["id"] for o in self.orders.values()
                       if o["symbol"] == ticker and o["status"] not in TERMINAL]
        n = self.emit_status(ticker, "T", "Trading Resumption", "", "")
        for oid in waiting:
            self._schedule_fills(self.orders[oid])
        return n

    def trade_session(self, conn: WSConnection) -> None:
        conn.answer_pings = lambda: not self.faults.no_pong
        listening = False
        try:
            while True:
                _, payload = conn.recv()
                try:
                    msg = json.loads(payload)
                except ValueError:
                    continue
                action = msg.get("action")
                data = msg.get("data") or {}
                if action in ("authenticate", "auth"):
                    with self.lock:
                        self.trade_auths += 1
                    ok = (not self.faults.refuse_trade_auth and data.get("key_id") == self.key_id
                          and data.get("secret_key") == self.secret_key)
                    conn.send_binary(json.dumps({"stream": "authorization", "data": {
                        "status": "authorized" if ok else "unauthorized",
                        "action": "authenticate"}}).encode())
                    if not ok:
                        conn.close(1008, "unauthorized")
                        return
                    with self.lock:
                        if conn not in self.trade_conns:
                            self.trade_conns.append(conn)
                elif action == "listen":
                    listening = "trade_updates" in (data.get("streams") or [])
                    conn.send_binary(json.dumps({"stream": "listening", "data": {
                        "streams": ["trade_updates"] if listening else []}}).encode())
        except ConnectionClosed:
            pass
        finally:
            with self.lock:
                if conn in self.trade_conns:
                    self.trade_conns.remove(conn)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _money(x: float) -> str:
    return f"{x:.2f}"


def _parse_time(s: str) -> int:
    s = s.strip()
    if len(s) == 10:
        return int(datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp())
    return int(parse_iso(s).timestamp())


class _Handler(BaseHTTPRequestHandler):
    emulator: AlpacaEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        logger.debug("%s " + format, self.address_string(), *args)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header on Alpaca's clock (the skew fault moves it)."""
        return super().date_time_string(self.emulator.alpaca_time() if timestamp is None
                                        else timestamp)

    def _send(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        body = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _rest(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        body = None
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            try:
                body = json.loads(self.rfile.read(n))
            except ValueError:
                self._send(400, {"code": 40010000, "message": "malformed json"})
                return
        headers: dict[str, str] | None = None
        try:
            out = self.emulator.handle_rest(method, parts.path, query, body, self.headers)
            status, obj = out[0], out[1]
            headers = out[2] if len(out) > 2 else None
        except Exception as e:  # an emulator bug must show up as a 500, not a hang
            logger.exception("emulator error")
            status, obj = 500, {"code": 50000000, "message": f"emulator error: {e}"}
        if status == RESET:  # no answer: linger 0 makes the close a TCP reset
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        self._send(status, obj, headers)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
        else:
            self._rest("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._rest("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._rest("DELETE")

    def _websocket(self) -> None:
        path = urlsplit(self.path).path
        key = self.headers.get("Sec-WebSocket-Key")
        if not key or not (path.startswith("/v2/") or path == "/stream"):
            self._send(404, {"message": "not found"})
            return
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        conn = WSConnection(self.connection, self.rfile)
        if path == "/stream":
            self.emulator.trade_session(conn)
        else:
            use_msgpack = "msgpack" in self.headers.get("Content-Type", "")
            self.emulator.market_session(conn, use_msgpack, path.rstrip("/").rsplit("/", 1)[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Loopback Alpaca emulator for manual runs")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--key", default="emu-key")
    p.add_argument("--secret", default="emu-secret")
    p.add_argument("--auto", action="store_true",
                   help="send each minute's bars for subscribed tickers just after it closes")
    p.add_argument("--rate-limit", type=int, default=200,
                   help="requests a minute per API (trading, data) before 429, as Alpaca's "
                        "free plan (0 = no limit)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    emu = AlpacaEmulator(args.port, key_id=args.key, secret_key=args.secret)
    emu.faults.rate_limit = max(0, args.rate_limit)
    emu.start()
    print(f"Alpaca emulator listening on {emu.url}")
    for k, v in emu.setting_values().items():
        if k.endswith(("key_id", "secret_key")):
            continue
        print(f"  AUTOTRADER_{k.replace('.', '_').upper()}={v}")
    print(f"  APCA_API_KEY_ID={args.key} APCA_API_SECRET_KEY=<the --secret value>")
    try:
        if args.auto:
            emu.run_auto()
        else:
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
