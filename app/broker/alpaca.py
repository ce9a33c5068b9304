"""The Alpaca broker (paper or live) behind the engine's ``Broker`` protocol, via alpaca-py.

Orders are market/day for whole shares with the engine's ``client_order_id``. The rule that
matters most: an order is never placed twice. Retries follow the one policy in retry.py (at
most 3 POSTs per order, 5 tries per read, never nested, a budget in seconds). A 429 was not
processed, so it is simply retried after a wait (``X-RateLimit-Reset``, never less than a
minimum); after a 5xx, a timeout or a reset connection the order may exist, so we look the
client order id up before resubmitting.
Alpaca answers a duplicate client order id with HTTP 422 and code 40010001, a code it also
uses for other invalid requests: so a 40010001, and any 422 after an uncertain send, is
settled by looking the client order id up (found: that is our order; not found: a refusal),
never by reading the message.

Order progress comes from the trade-updates stream; a poller asks REST for tracked orders the
stream has not reported on recently (or while the stream is down). Updates carry Alpaca's
cumulative ``filled_qty``/``filled_avg_price`` and are passed on only when they move forward,
one at a time, so listeners never see an order go backwards.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, TypeVar, cast

import requests

from app.broker import retry
from app.broker.alpaca_clients import (
    INVALID_REQUEST_CODE,
    api_error_code,
    api_error_message,
    api_error_status,
    corporate_actions_client,
    corporate_actions_from,
    is_live,
    refusal_text,
    retry_after,
    trade_stream_url,
    trading_base_url,
    trading_client,
)
from app.broker.alpaca_trade_stream import TradeUpdateEvent, TradeUpdatesStream
from app.broker.base import (
    TERMINAL_STATUSES,
    Account,
    BrokerError,
    MarketClock,
    OrderListener,
    OrderRequest,
    OrderUpdate,
    Side,
    TickerInfo,
    UnknownTickerError,
)
from app.config import Settings
from app.listeners import Callbacks
from db.timeutil import parse_iso

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def _f(x: Any) -> float | None:
    return None if x is None or x == "" else float(x)


def update_from_order(o: Any, reason: str = "") -> OrderUpdate:
    """An ``OrderUpdate`` from an alpaca-py ``Order`` model or a raw order dict."""
    get: Callable[[str], Any] = o.get if isinstance(o, dict) else lambda k: getattr(o, k, None)
    ts = get("updated_at")
    if isinstance(ts, str):
        ts = parse_iso(ts)
    avg = _f(get("filled_avg_price"))
    return OrderUpdate(
        client_order_id=str(get("client_order_id")),
        status=_value(get("status")),
        ticker=str(get("symbol") or ""),
        side=cast(Side, _value(get("side"))),  # Alpaca's order sides are "buy" and "sell"
        qty=int(float(get("qty") or 0)),
        filled_qty=int(float(get("filled_qty") or 0)),
        filled_avg_price=avg,
        broker_order_id=str(get("id") or ""),
        reason=reason,
        timestamp=ts.astimezone(UTC) if isinstance(ts, datetime) else None,
    )


class AlpacaBroker:
    """Alpaca through alpaca-py's ``TradingClient`` plus the trade-updates stream."""

    # A real account may be traded by other installs (a Pi and a desktop) with the same keys:
    # the engine gives this broker's client order ids a per-install prefix.
    shared_account = True

    def __init__(self, settings: Settings, *, client: Any = None, stream: bool = True,
                 max_attempts: int = retry.READ_POLICY.attempts,
                 order_attempts: int = retry.ORDER_POLICY.attempts,
                 backoff_base: float = 0.5, backoff_max: float = 8.0,
                 rate_limit_wait: float = 5.0, rate_limit_min: float = 1.0,
                 poll_interval: float = 5.0,
                 stream_backoff: float = 1.0, stream_auth_retry: float = 300.0,
                 request_timeout: float = 15.0, stale_after: float = 30.0) -> None:
        self.live = is_live(settings)
        self.name = "alpaca-live" if self.live else "alpaca-paper"
        self._settings = settings
        self._ca_client: Any = None  # alpaca-py CorporateActionsClient, made when first used
        self.client = client or trading_client(settings, timeout=request_timeout)
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        # One retry policy (retry.py) for reads and one for orders; the pauses come from
        # ``_pause`` (backoff_base/backoff_max, a 429's reset time).
        self.read_policy = replace(retry.READ_POLICY, attempts=max_attempts)
        self.order_policy = replace(retry.ORDER_POLICY, attempts=order_attempts)
        self.rate_limit_wait = rate_limit_wait
        self.rate_limit_min = rate_limit_min
        # Poll an open order every ``poll_interval`` while the trade stream is down, and only
        # after ``stale_after`` of silence while it is up (200 requests/min per key).
        self.poll_interval = poll_interval
        self.stale_after = max(stale_after, poll_interval)
        self._listeners: Callbacks[[OrderUpdate]] = Callbacks("order listener")
        self._lock = threading.Lock()
        self._dispatch = threading.RLock()
        self._known: dict[str, OrderUpdate] = {}  # latest state per client order id we track
        self._touched: dict[str, float] = {}  # cid -> monotonic time of the last update
        self._stop = threading.Event()
        logger.info("Alpaca broker: %s trading at %s", "LIVE" if self.live else "paper",
                    trading_base_url(settings))
        self.trade_stream: TradeUpdatesStream | None = None
        if stream:
            a = settings.alpaca
            self.trade_stream = TradeUpdatesStream(
                trade_stream_url(settings), str(a.key_id), str(a.secret_key), self._on_event,
                backoff_base=stream_backoff, auth_retry=stream_auth_retry,
                on_reconnect=self._poll_open_now)
            self.trade_stream.start()
        self._poller = threading.Thread(target=self._poll_loop, name="alpaca-order-poll",
                                        daemon=True)
        self._poller.start()

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> AlpacaBroker:
        """Paper unless ``settings.effective_mode == 'live'``."""
        return cls(settings, **kwargs)

    # --- calling Alpaca -------------------------------------------------------------------
    def _pause(self, attempt: int, e: BaseException) -> float:
        """Seconds before the next try: a 429 waits for Alpaca's reset time, the rest back off."""
        if api_error_status(e) == 429:
            return retry_after(e, self.rate_limit_wait, minimum=self.rate_limit_min)
        return min(self.backoff_max, self.backoff_base * 2.0 ** attempt)

    @staticmethod
    def _transient(e: BaseException) -> bool:
        if isinstance(e, BrokerError):  # a nested call that already gave up (a lookup)
            return e.retryable
        if isinstance(e, requests.RequestException):
            return True
        status = api_error_status(e)
        return status == 429 or (status is not None and status >= 500)

    def _retried(self, fn: Callable[[], T], policy: retry.RetryPolicy, what: str,
                 failed: str) -> T:
        """``fn`` under ``policy`` (retry.py); running out of tries, or stopped before one,
        is a retryable BrokerError "``failed`` after N attempts: ..."."""
        try:
            return retry.call(fn, policy, transient=self._transient, pause_for=self._pause,
                              wait=self._stop.wait, what=what)
        except retry.Exhausted as x:
            why = f"; not tried again: {x.reason}" if isinstance(x, retry.Stopped) else ""
            raise BrokerError(f"{failed} after {x.tries} attempts{why}: "
                              f"{self._describe(x.last)}", retryable=True,
                              status=api_error_status(x.last)) from None

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` under the read policy (retried on 429/5xx/network errors, see retry.py);
        failures mapped to BrokerError."""
        try:
            return self._retried(fn, self.read_policy, f"Alpaca {what}",
                                 f"Alpaca {what} failed")
        except BrokerError:
            raise
        except Exception as e:
            raise self._error(what, e) from None

    @staticmethod
    def _describe(e: BaseException | None) -> str:
        if e is None:
            return "unknown error"
        status = api_error_status(e)
        if status is not None:
            return f"HTTP {status}: {api_error_message(e)}"
        return f"{type(e).__name__}: {e}"

    def _error(self, what: str, e: BaseException) -> BrokerError:
        status = api_error_status(e)
        code = api_error_code(e)
        if status in (401, 403):
            msg = refusal_text(what, status, code, api_error_message(e))
        else:
            msg = f"Alpaca {what}: {self._describe(e)}"
        return BrokerError(msg, retryable=False, status=status, code=code)

    # --- Broker protocol ------------------------------------------------------------------
    def get_account(self) -> Account:
        a = self._call("account", self.client.get_account)
        return Account(cash=float(a.cash), equity=float(a.equity),
                       buying_power=float(a.buying_power), currency=a.currency or "USD",
                       trading_blocked=bool(a.trading_blocked),
                       account_blocked=bool(a.account_blocked), status=_value(a.status),
                       last_equity=(float(a.last_equity) if a.last_equity is not None
                                    else None))

    def get_clock(self) -> MarketClock:
        c = self._call("clock", self.client.get_clock)
        return MarketClock(timestamp=c.timestamp.astimezone(UTC), is_open=bool(c.is_open),
                           next_open=c.next_open.astimezone(UTC),
                           next_close=c.next_close.astimezone(UTC))

    def get_ticker(self, symbol: str) -> TickerInfo:
        try:
            a = self._call(f"asset {symbol}", lambda: self.client.get_asset(symbol))
        except BrokerError as e:
            if e.status in (404, 422):
                raise UnknownTickerError(f"Alpaca does not know the ticker {symbol!r}",
                                         status=e.status) from None
            raise
        return TickerInfo(symbol=a.symbol, tradable=bool(a.tradable),
                          active=_value(a.status) == "active",
                          fractionable=bool(a.fractionable), exchange=_value(a.exchange),
                          name=a.name or "")

    def get_order(self, client_order_id: str) -> OrderUpdate | None:
        try:
            o = self._call(f"order {client_order_id}",
                           lambda: self.client.get_order_by_client_id(client_order_id))
        except BrokerError as e:
            if e.status == 404:
                return None
            raise
        u = update_from_order(o)
        self._note(u)
        return u

    def list_open_orders(self) -> list[OrderUpdate]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        req = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500)
        orders = self._call("open orders", lambda: self.client.get_orders(filter=req))
        return [update_from_order(o) for o in orders]

    def cancel_order(self, client_order_id: str) -> None:
        u = self.get_order(client_order_id)
        if u is None or u.is_terminal:
            return
        try:
            self._call(f"cancel {client_order_id}",
                       lambda: self.client.cancel_order_by_id(u.broker_order_id))
        except BrokerError as e:
            if e.status != 422:  # 422: no longer cancelable (it filled meanwhile)
                raise

    def get_positions(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in self._call("positions", self.client.get_all_positions):
            qty = float(p.qty)
            if _value(p.side) == "short" and qty > 0:
                qty = -qty
            out[p.symbol] = qty
        return out

    def submit_order(self, request: OrderRequest) -> OrderUpdate:
        """Place a market day order, idempotent on ``client_order_id`` (see module doc).

        Tried under ``order_policy`` (retry.py): at most ``order_policy.attempts`` POSTs, and
        after an answer that leaves the outcome unknown (5xx, timeout, connection reset) the
        order is looked up by client order id before any resend. Alpaca keeps the id unique
        per account and answers a lookup by it (docs.alpaca.markets/docs/working-with-orders,
        "client_order_id"; /reference/getorderbyclientorderid: "Retrieves a single order
        specified by the client order ID"), so a resend can never make a second order.
        A refusal (403/422: buying power, not tradable, ...) comes back as a ``rejected``
        update with Alpaca's reason; only failures that may be transient raise BrokerError."""
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

        cid = request.client_order_id
        if request.qty <= 0 or int(request.qty) != request.qty:
            return self._rejected(request, f"quantity must be a whole number above 0, got {request.qty}")
        order_req = MarketOrderRequest(
            symbol=request.ticker, qty=int(request.qty),
            side=OrderSide.BUY if request.side == "buy" else OrderSide.SELL,
            time_in_force=TimeInForce.DAY, client_order_id=cid)
        uncertain = [False]  # an earlier try may have placed the order

        def once() -> OrderUpdate:
            if uncertain[0]:
                existing = self.get_order(cid)  # nested: one GET (retry.py rule 2)
                if existing is not None:
                    logger.info("order %s was placed (%s)", cid, existing.status)
                    return existing
            return self._post_once(request, order_req, uncertain)

        return self._retried(once, self.order_policy, f"order {cid}",
                             f"order {cid} not placed")

    def _post_once(self, request: OrderRequest, order_req: Any,
                   uncertain: list[bool]) -> OrderUpdate:
        """One ``POST /v2/orders``. Raises what may be transient (for the retry loop), after
        noting in ``uncertain`` whether the order may exist now."""
        cid = request.client_order_id
        try:
            u = update_from_order(self.client.submit_order(order_req))
        except Exception as e:
            status = api_error_status(e)
            code = api_error_code(e)
            msg = api_error_message(e)
            if status == 422 and (code == INVALID_REQUEST_CODE or uncertain[0]):
                # A duplicate id (ours, placed by an earlier attempt or before a restart)
                # or an invalid order: only a lookup tells which.
                existing = self._lookup_after(cid, f"HTTP 422, code {code}")
                if existing is not None:
                    logger.info("order %s already exists at Alpaca (%s)", cid, existing.status)
                    return existing
                logger.warning("order %s rejected by Alpaca: %s", cid, msg)
                return self._rejected(request, msg)
            if status == 429:
                logger.warning("order %s: rate limited, waiting", cid)
                raise
            if isinstance(e, requests.RequestException) or (status or 0) >= 500:
                uncertain[0] = True  # it may have been placed before the error
                logger.warning("order %s: %s; it will be looked up before any resend", cid,
                               self._describe(e))
                raise
            if status in (403, 404, 422):
                logger.warning("order %s rejected by Alpaca: %s", cid, msg)
                return self._rejected(request, msg)
            raise self._error(f"order {cid}", e) from None
        logger.info("order %s: %s %d %s -> %s", cid, request.side, request.qty, request.ticker,
                    u.status)
        self._note(u)
        return u

    def _lookup_after(self, cid: str, why: str) -> OrderUpdate | None:
        """Look ``cid`` up after an ambiguous refusal; a failed lookup leaves the order unknown
        (retryable: the engine asks again later) rather than guessing either way."""
        try:
            return self.get_order(cid)
        except BrokerError as e:
            raise BrokerError(f"order {cid}: {why}, and looking it up failed ({e})",
                              retryable=True, status=422) from None

    def _rejected(self, request: OrderRequest, reason: str) -> OrderUpdate:
        return OrderUpdate(client_order_id=request.client_order_id, status="rejected",
                           ticker=request.ticker, side=request.side, qty=int(request.qty),
                           reason=reason, timestamp=datetime.now(UTC))

    def get_corporate_actions(self, symbols: list[str], start: date,
                              end: date) -> list[dict[str, Any]]:
        """Announced corporate actions for ``symbols`` with dates in [start, end], through
        alpaca-py's ``CorporateActionsClient`` (``GET /v1/corporate-actions`` on the data
        API), as plain dicts (see ``corporate_actions_from``)."""
        from alpaca.data.requests import CorporateActionsRequest

        if self._ca_client is None:
            self._ca_client = corporate_actions_client(self._settings)
        out: list[dict[str, Any]] = []
        for i in range(0, len(symbols), 100):  # keep each query string short
            req = CorporateActionsRequest(symbols=list(symbols[i:i + 100]), start=start,
                                          end=end)
            raw = self._call("read corporate actions",
                             partial(self._ca_client.get_corporate_actions, req))
            out.extend(corporate_actions_from(raw, set(symbols)))
        return out

    def add_order_listener(self, listener: OrderListener) -> None:
        self._listeners.add(listener)

    def close(self) -> None:
        self._stop.set()
        if self.trade_stream is not None:
            self.trade_stream.stop()
        self._poller.join(timeout=5)

    # --- order progress -------------------------------------------------------------------
    def _note(self, u: OrderUpdate) -> None:
        """Remember ``u`` as the latest known state (no dispatch): the caller has it."""
        with self._lock:
            prev = self._known.get(u.client_order_id)
            if prev is None or _newer(prev, u):
                self._known[u.client_order_id] = u
                self._touched[u.client_order_id] = time.monotonic()

    def _emit(self, u: OrderUpdate) -> None:
        with self._dispatch:
            with self._lock:
                prev = self._known.get(u.client_order_id)
                if prev is not None and not _newer(prev, u):
                    return
                self._known[u.client_order_id] = u
                self._touched[u.client_order_id] = time.monotonic()
            self._listeners.notify(u)

    def _on_event(self, data: TradeUpdateEvent) -> None:
        order = data.get("order")
        if not isinstance(order, dict) or not order.get("client_order_id"):
            return
        event = str(data.get("event", ""))
        reason = ""
        if event in ("rejected", "canceled", "expired", "done_for_day"):
            reason = f"{event} by Alpaca"
        try:
            u = update_from_order(order, reason)
        except (TypeError, ValueError) as e:
            logger.warning("trade update not understood (%s): event %s", e, event)
            return
        self._emit(u)

    def _poll_open_now(self) -> None:
        """The trade stream is back: events it missed are not replayed, so every open order is
        asked about at the poller's next pass (within a second), not after ``stale_after``."""
        with self._lock:
            for cid, u in self._known.items():
                if not u.is_terminal:
                    self._touched[cid] = 0.0

    def _poll_loop(self) -> None:
        while not self._stop.wait(min(1.0, self.poll_interval)):
            stream_ok = self.trade_stream is not None and self.trade_stream.connected
            now = time.monotonic()
            quiet = self.stale_after if stream_ok else self.poll_interval
            with self._lock:
                due = [cid for cid, u in self._known.items() if not u.is_terminal
                       and now - self._touched.get(cid, 0) >= quiet]
                for cid in [c for c, u in self._known.items()
                            if u.is_terminal and now - self._touched.get(c, 0) > 3600]:
                    del self._known[cid]  # an hour after the end no duplicate comes any more
                    self._touched.pop(cid, None)
            for cid in due:
                if self._stop.is_set():
                    return
                try:
                    o = self.client.get_order_by_client_id(cid)
                except Exception as e:
                    logger.debug("poll %s failed: %s", cid, e)
                    continue
                with self._lock:
                    self._touched[cid] = time.monotonic()
                self._emit(update_from_order(o))


def _newer(prev: OrderUpdate, new: OrderUpdate) -> bool:
    """True if ``new`` moves the order forward (more filled, or a different status later on)."""
    if prev.status in TERMINAL_STATUSES:
        return False
    if new.filled_qty != prev.filled_qty:
        return new.filled_qty > prev.filled_qty
    return new.status != prev.status
