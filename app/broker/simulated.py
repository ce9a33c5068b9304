"""The simulated broker (demo mode and backtests).

Fills follow the shared fill model (``app.broker.fill_model``, also used by backtests): a
market order fills at a *base price* moved against the trader by ``slippage_bps``, rounded to
1/10000 of a dollar, plus a commission per share; a sell beyond the position or a buy beyond
the account's cash is rejected. The base price is pluggable (``price_rule``):

- ``last_close`` (default): the close of the newest bar that *ended* before the order, i.e.
  the last bar whose start is before the current minute — the price the algorithm just saw.
- ``next_open``: the open of the bar starting in the current minute (backtests that prefer it).

Optional commission per share (deducted from cash, reported to the engine through
``commission_per_share``). Optional partial fills (tests): with ``partial_fill_ratio`` set, an
order first fills that fraction; the rest fills once the clock reaches a later minute (on the
next ``get_order``/``list_open_orders``) or on ``fill_pending()``.

Cash, positions and orders live in the system DB (tables ``sim_*``), so a demo survives a
restart, and ``submit_order`` is idempotent on ``client_order_id``.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.broker import demo_universe
from app.broker.base import (
    Account,
    BrokerError,
    MarketClock,
    OrderListener,
    OrderRequest,
    OrderUpdate,
    TickerInfo,
    UnknownTickerError,
)
from app.broker.fill_model import fill_price, refusal
from app.clock import Clock
from app.listeners import Callbacks
from app.testhooks import pause_point
from db.calendar import MarketCalendar, nyse
from db.market import TICKER_RE, MarketStore
from db.simbroker import OPEN_STATUSES, SimBrokerStore
from db.system import SystemStore
from db.timeutil import iso_z, minute_epoch

logger = logging.getLogger(__name__)

NEW_YORK = ZoneInfo("America/New_York")
PriceRule = Callable[[str, datetime], float | None]


def last_close(market: MarketStore) -> PriceRule:
    """Base price = close of the last complete bar before the current minute."""

    def rule(ticker: str, now: datetime) -> float | None:
        return market.latest_price(ticker, before_ts=minute_epoch(now))

    return rule


def next_open(market: MarketStore) -> PriceRule:
    """Base price = open of the bar starting this minute (falls back to the last close)."""
    fallback = last_close(market)

    def rule(ticker: str, now: datetime) -> float | None:
        m = minute_epoch(now)
        rows = market.bars_between(ticker, m, m + 60)
        return rows[0][1] if rows else fallback(ticker, now)

    return rule


class SimulatedBroker:
    name = "simulated"

    def __init__(self, system: SystemStore, market: MarketStore, clock: Clock,
                 starting_cash: float = 100_000.0, slippage_bps: float = 1.0,
                 commission_per_share: float = 0.0, *, price_rule: PriceRule | None = None,
                 partial_fill_ratio: float | None = None,
                 symbols: Iterable[str] | Mapping[str, str] | None = None,
                 calendar: MarketCalendar | None = None) -> None:
        """``symbols``: the tickers this broker knows (a mapping gives each its name, as
        ``app.broker.demo_universe.known_symbols`` does for the demo); any other is refused
        as unknown, except the tickers it holds shares of. None = any well-formed symbol
        (tests; a backtest names its one ticker)."""
        if not (starting_cash > 0 and math.isfinite(starting_cash)):
            raise ValueError(f"starting cash must be positive, got {starting_cash}")
        if partial_fill_ratio is not None and not 0 < partial_fill_ratio < 1:
            raise ValueError("partial_fill_ratio must be between 0 and 1")
        self.system, self.market, self.clock = system, market, clock
        self.calendar = calendar or nyse()
        self.slippage_bps = float(slippage_bps)
        self.commission_per_share = float(commission_per_share)
        self.price_rule = price_rule or last_close(market)
        self.partial_fill_ratio = partial_fill_ratio
        self.symbols = None if symbols is None else set(symbols)
        self._names: dict[str, str] = dict(symbols) if isinstance(symbols, Mapping) else {}
        # Sessions (YYYY-MM-DD, New York) the exchange did not open although the calendar
        # has them (an unscheduled closure): the clock says closed, orders are refused.
        self.closed_days: set[str] = set()
        self._listeners: Callbacks[[OrderUpdate]] = Callbacks("order listener")
        self._lock = threading.RLock()
        self.store = SimBrokerStore(system)
        self._last_equity: tuple[int, float] | None = None  # (previous close, equity then)
        with self.system.atomic():
            self.store.open_account(float(starting_cash), iso_z(clock.now()))
        if self.symbols is not None:  # shares held can always be priced and sold
            self.symbols |= set(self.store.positions())

    # --- account -------------------------------------------------------------------------
    def _cash(self) -> float:
        return self.store.cash()

    def get_positions(self) -> dict[str, float]:
        return self.store.positions()

    def get_account(self) -> Account:
        cash = self._cash()
        equity = cash
        for t, q in self.get_positions().items():
            p = self.market.latest_price(t)
            equity += q * (p or 0.0)
        return Account(cash=cash, equity=equity, buying_power=cash,
                       last_equity=self._equity_at_previous_close(cash))

    def _equity_at_previous_close(self, cash: float) -> float | None:
        """As Alpaca's ``last_equity``: the account's value at the last session close, its
        cash and shares then (today's fills undone) at that close's prices. Worked out once
        per session."""
        try:
            close = int(self.calendar.previous_session(self.clock.now()).close.timestamp())
        except ValueError:  # before the calendar's first session
            return None
        if self._last_equity is not None and self._last_equity[0] == close:
            return self._last_equity[1]
        positions = dict(self.get_positions())
        for o in self.store.filled_since(close):
            q = int(o["filled_qty"])
            signed = q if o["side"] == "buy" else -q
            cash += signed * float(o["filled_avg_price"]) + q * self.commission_per_share
            positions[o["ticker"]] = positions.get(o["ticker"], 0.0) - signed
        value = cash + sum(q * (self.market.latest_price(t, before_ts=close) or 0.0)
                           for t, q in positions.items() if q)
        self._last_equity = (close, value)
        return value

    def _closed_today(self, now: datetime) -> bool:
        return bool(self.closed_days) and \
            now.astimezone(NEW_YORK).date().isoformat() in self.closed_days

    def get_clock(self) -> MarketClock:
        now = self.clock.now()
        is_open = self.calendar.is_open(now) and not self._closed_today(now)
        return MarketClock(now, is_open, self.calendar.next_open(now),
                           self.calendar.next_close(now))

    def get_ticker(self, symbol: str) -> TickerInfo:
        if not isinstance(symbol, str) or not TICKER_RE.match(symbol):
            raise UnknownTickerError(f"{symbol!r} is not a ticker symbol")
        if self.symbols is not None and symbol not in self.symbols:
            raise UnknownTickerError(
                f"{symbol} is not listed in the simulated market (it lists "
                f"{len(self.symbols)} symbols)")
        name = (self._names.get(symbol) or demo_universe.name_of(symbol)
                or f"{symbol} (simulated)")
        return TickerInfo(symbol=symbol, tradable=True, active=True, name=name)

    # --- orders --------------------------------------------------------------------------
    def _row(self, coid: str) -> dict[str, Any] | None:
        return self.store.order(coid)

    def _update(self, row: dict[str, Any]) -> OrderUpdate:
        return OrderUpdate(
            client_order_id=row["client_order_id"], status=row["status"], ticker=row["ticker"],
            side=row["side"], qty=row["qty"], filled_qty=row["filled_qty"],
            filled_avg_price=row["filled_avg_price"], broker_order_id=row["broker_order_id"],
            reason=row["reason"] or "", timestamp=self.clock.now(),
        )

    def _fill_price(self, ticker: str, side: str, now: datetime) -> float | None:
        base = self.price_rule(ticker, now)
        if base is None or not base > 0:
            return None
        return fill_price(side, base, self.slippage_bps)

    def _fill(self, row: dict[str, Any], qty: int, now: datetime) -> str:
        """Fill ``qty`` more shares of an open order; return '' or why it was rejected."""
        price = self._fill_price(row["ticker"], row["side"], now)
        if price is None:
            return f"no market price for {row['ticker']}"
        commission = qty * self.commission_per_share
        cash = self._cash()
        held = self.store.position(row["ticker"])
        why = refusal(row["side"], qty, price, commission, cash, held)
        if why:
            return why
        signed = qty if row["side"] == "buy" else -qty
        self.store.apply_fill(row["ticker"], signed, price, commission)
        prev_q, prev_avg = row["filled_qty"], row["filled_avg_price"] or 0.0
        new_q = prev_q + qty
        row["filled_avg_price"] = round((prev_avg * prev_q + price * qty) / new_q, 6)
        row["filled_qty"] = new_q
        row["status"] = "filled" if new_q >= row["qty"] else "partially_filled"
        return ""

    def _save(self, row: dict[str, Any]) -> None:
        self.store.save_order(row, iso_z(self.clock.now()))

    def submit_order(self, request: OrderRequest) -> OrderUpdate:
        if request.side not in ("buy", "sell"):
            raise BrokerError(f"unknown side {request.side!r}", status=422)
        if type(request.qty) is not int or request.qty <= 0:
            raise BrokerError(f"qty must be a positive whole number, got {request.qty!r}",
                              status=422)
        if not 1 <= len(request.client_order_id) <= 48:
            raise BrokerError("client_order_id must be 1-48 characters", status=422)
        self.get_ticker(request.ticker)
        if self._closed_today(self.clock.now()):
            raise BrokerError("the market is closed today (unscheduled closure)", status=403)
        with self._lock:
            existing = self._row(request.client_order_id)
            if existing is not None:
                return self._update(existing)  # idempotent: the same id is the same order
            now = self.clock.now()
            row = {"client_order_id": request.client_order_id,
                   "broker_order_id": "sim-" + uuid.uuid4().hex[:16], "ticker": request.ticker,
                   "side": request.side, "qty": request.qty, "status": "new", "filled_qty": 0,
                   "filled_avg_price": None, "reason": "",
                   "created_ts": minute_epoch(now)}
            with self.system.atomic():
                self.store.insert_order(row, iso_z(now))
                qty = request.qty
                if self.partial_fill_ratio is not None and qty > 1:
                    qty = max(1, int(qty * self.partial_fill_ratio))
                why = self._fill(row, qty, now)
                if why:
                    row["status"], row["reason"] = "rejected", why
                self._save(row)
            update = self._update(row)
        pause_point("after_broker_fill")
        if why:
            logger.info("simulated broker rejected %s: %s", request.client_order_id, why)
        self._notify(update)
        return update

    def _progress(self) -> list[OrderUpdate]:
        """Fill the rest of partially filled orders from earlier minutes."""
        now = self.clock.now()
        minute = minute_epoch(now)
        out = []
        with self._lock:
            for row in self._open_rows():
                if row["created_ts"] >= minute:
                    continue
                out.append(self._complete(row, now))
        for u in out:
            self._notify(u)
        return out

    def _complete(self, row: dict[str, Any], now: datetime) -> OrderUpdate:
        with self.system.atomic():
            why = self._fill(row, row["qty"] - row["filled_qty"], now)
            if why:
                row["status"], row["reason"] = "canceled", why
            self._save(row)
        return self._update(row)

    def fill_pending(self) -> list[OrderUpdate]:
        """Fill every open order's remainder now (tests)."""
        now = self.clock.now()
        with self._lock:
            out = [self._complete(row, now) for row in self._open_rows()]
        for u in out:
            self._notify(u)
        return out

    def _open_rows(self) -> list[dict[str, Any]]:
        return self.store.open_orders(OPEN_STATUSES)

    def get_order(self, client_order_id: str) -> OrderUpdate | None:
        self._progress()
        with self._lock:
            row = self._row(client_order_id)
        return None if row is None else self._update(row)

    def list_open_orders(self) -> list[OrderUpdate]:
        self._progress()
        with self._lock:
            return [self._update(r) for r in self._open_rows()]

    def cancel_order(self, client_order_id: str) -> None:
        with self._lock:
            row = self._row(client_order_id)
            if row is None:
                raise BrokerError(f"order {client_order_id} not found", status=404)
            if row["status"] not in OPEN_STATUSES:
                return
            row["status"] = "canceled"
            with self.system.atomic():
                self._save(row)
            update = self._update(row)
        self._notify(update)

    def add_order_listener(self, listener: OrderListener) -> None:
        self._listeners.add(listener)

    def _notify(self, update: OrderUpdate) -> None:
        self._listeners.notify(update)

    def close(self) -> None:
        self._listeners.clear()
