"""The engine's view of a broker. Alpaca (paper/live) and the simulated broker implement it.

Orders are market orders for whole shares, identified by the engine's ``client_order_id``
(derived from algorithm id and minute) so that submitting the same id twice never places two
orders: a broker must return the existing order for a known id.

A broker reports order progress as ``OrderUpdate``s carrying the *cumulative* filled quantity
and average price, the way Alpaca does; the engine derives each fill from the change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from db.system import TERMINAL_ORDER_STATUSES

Side = Literal["buy", "sell"]

# Alpaca's order statuses; the engine treats these as final.
TERMINAL_STATUSES = TERMINAL_ORDER_STATUSES  # one list: db/system.py (its SQL uses it too)


@dataclass(frozen=True)
class Account:
    cash: float
    equity: float
    buying_power: float
    currency: str = "USD"
    trading_blocked: bool = False
    account_blocked: bool = False
    status: str = "ACTIVE"
    # Equity at the previous session's close (Alpaca's ``last_equity``: "Equity as of
    # previous trading day at 16:00:00 ET", https://alpaca.markets/docs/api-references/
    # trading-api/account/): today's P&L is equity - last_equity. None when unknown.
    last_equity: float | None = None


@dataclass(frozen=True)
class TickerInfo:
    symbol: str
    tradable: bool
    active: bool = True
    fractionable: bool = False
    exchange: str = ""
    name: str = ""


@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    ticker: str
    side: Side
    qty: int


@dataclass(frozen=True)
class OrderUpdate:
    """An order's state at one moment. ``filled_qty``/``filled_avg_price`` are cumulative."""

    client_order_id: str
    status: str
    ticker: str
    side: Side
    qty: int
    filled_qty: int = 0
    filled_avg_price: float | None = None
    broker_order_id: str = ""
    reason: str = ""
    timestamp: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class MarketClock:
    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


class BrokerError(RuntimeError):
    """A broker refused or failed a request. ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None,
                 code: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.code = code


class UnknownTickerError(BrokerError):
    pass


OrderListener = Callable[[OrderUpdate], None]


class Broker(Protocol):
    name: str  # "simulated", "alpaca-paper", "alpaca-live"

    def get_account(self) -> Account: ...

    def get_clock(self) -> MarketClock: ...

    def get_ticker(self, symbol: str) -> TickerInfo:
        """Raise ``UnknownTickerError`` for a symbol the broker does not know."""
        ...

    def submit_order(self, request: OrderRequest) -> OrderUpdate:
        """Place a market order (time in force: day). Idempotent on ``client_order_id``."""
        ...

    def get_order(self, client_order_id: str) -> OrderUpdate | None:
        """The order's latest state, or None if the broker never saw this id."""
        ...

    def list_open_orders(self) -> list[OrderUpdate]: ...

    def cancel_order(self, client_order_id: str) -> None: ...

    def get_positions(self) -> dict[str, float]:
        """Shares held per symbol (negative = short)."""
        ...

    def add_order_listener(self, listener: OrderListener) -> None:
        """Call ``listener`` (from any thread) on every order update the broker learns of."""
        ...

    def close(self) -> None: ...


@dataclass
class FillDelta:
    """One fill derived from two cumulative states."""

    qty: int
    price: float


def fill_delta(prev_qty: int, prev_avg: float | None, new_qty: int,
               new_avg: float | None) -> FillDelta | None:
    """The quantity and price of the fill between two cumulative (filled_qty, avg) states.

    Alpaca reports only cumulative figures, so the n-th fill's price is
    ``(new_avg * new_qty - prev_avg * prev_qty) / (new_qty - prev_qty)``.
    """
    if new_qty <= prev_qty or new_avg is None:
        return None
    dq = new_qty - prev_qty
    notional = new_avg * new_qty - (prev_avg or 0.0) * prev_qty
    return FillDelta(qty=dq, price=round(notional / dq, 6))


@dataclass
class PositionDiff:
    symbol: str
    ledger: float
    broker: float


@dataclass
class ReconcileReport:
    orders_updated: list[str] = field(default_factory=list)
    position_diffs: list[PositionDiff] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.position_diffs
