"""The engine's data types: what the core owns (``AlgoState``) and what leaves it (views,
tick results, errors). No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

import db
from app.engine.ledger import Ledger
from app.engine.sandbox import Call
from db.market import Bar
from db.system import Transaction

if TYPE_CHECKING:
    from concurrent.futures import Future

    import numpy as np

LAST_TICK_KEY = "engine.last_tick"
GUARDS_KEY = "engine.guards"
EXTERNAL_KEY = "engine.external_positions"

# A plugin object being made: (the object, None), or (None, why it cannot be made).
NewInstance = tuple[Any, str | None]


@dataclass(frozen=True)
class AlgoView:
    """Everything an algorithm's card shows, derived from the ledger."""

    id: int
    name: str
    plugin: str
    ticker: str
    status: str  # running | paused | stopped | error
    error: str | None
    initial_capital: float
    cash: float
    position: int
    avg_cost: float | None
    last_price: float | None
    value: float
    pnl: float
    pnl_pct: float
    realised: float
    unrealised: float
    params: dict[str, Any] = field(default_factory=dict)


class DecisionRow(TypedDict):
    """What one algorithm decided this minute (``action`` buy/sell/hold and ``shares``), or
    why it has no decision (``refused``; action None, 0 shares)."""

    algo_id: int
    name: str
    ticker: str
    action: str | None
    shares: int
    refused: str | None


class AccountSummary(TypedDict):
    """The account as the screens show it: the broker's cash and equity (``last_equity`` at the
    previous close, None when unknown), the cash no algorithm holds (``free``), the engine's
    mode and broker, and why trading is halted or storage failing (None when not)."""

    cash: float
    equity: float
    free: float
    last_equity: float | None
    mode: str
    broker: str
    halted: str | None
    storage: str | None


@dataclass(frozen=True)
class TickResult:
    minute: datetime
    decisions: list[DecisionRow]
    fills: list[Transaction]
    errors: dict[int, str]
    latency_ms: float


def decision_row(a: AlgoState, action: str | None = None, shares: int = 0,
                 refused: str | None = None) -> DecisionRow:
    """One entry of ``TickResult.decisions``: what ``a`` decided this minute (``action`` and
    ``shares``), or why it has no decision (``refused``; action None, 0 shares)."""
    return DecisionRow(algo_id=a.id, name=a.name, ticker=a.ticker, action=action,
                       shares=shares, refused=refused)


class EngineError(Exception):
    """A request the engine refuses; the message is for the user."""


class UnknownPluginError(EngineError):
    pass


class InsufficientCapitalError(EngineError):
    def __init__(self, message: str, free: float) -> None:
        super().__init__(message)
        self.free = free


class TickerRejectedError(EngineError):
    pass


class EngineListener(Protocol):
    """Every method is optional. Called from engine threads: hand over, don't block."""

    def on_tick(self, result: TickResult) -> None: ...

    def on_fill(self, algo_id: int, transaction: Transaction) -> None: ...

    def on_algorithms_changed(self) -> None: ...

    def on_bar(self, bar: Bar) -> None: ...

    def on_snapshot(self, view: AlgoView, account: Any) -> None:
        """After a fill, a stop, a resume or a pause: the changed algorithm as its card shows
        it (status, value and P&L from the engine's ledger) and the last account read
        (``Account`` or None), pushed so the UI need not ask the engine again."""
        ...


class EngineProvider(db.StoreProvider):
    """The seed functions' data source over the live DBs, plus a numpy fast path."""

    def last_n_closes(self, ticker: str, n: int, before: datetime | None) -> np.ndarray:
        import numpy as np  # here: the window imports this module before its first frame

        before_ts = 2**62 if before is None else int(before.timestamp())
        return np.asarray(self.market.last_n_closes(ticker, before_ts=before_ts, n=n),
                          dtype=np.float64)


@dataclass
class AlgoState:
    """One algorithm as the core holds it. Changed only under the core's lock."""

    id: int
    name: str
    plugin: str
    ticker: str
    initial_capital: float
    params: dict[str, Any]
    status: str  # running | stopped | error (as stored); a pause is ``paused``
    error: str | None
    ledger: Ledger
    instance: Any = None
    busy: Call | None = None
    paused: str | None = None  # why its ticker is paused (positions differ from the broker)
    cooldown_until: datetime | None = None  # a broker refusal: no orders before this minute
    rejections: int = 0  # broker refusals in a row
    starting: Future[NewInstance] | None = None  # the plugin object being made in the background

    @property
    def trading(self) -> bool:
        """May orders of this algorithm leave the machine now?"""
        return self.status == "running" and self.paused is None

    @property
    def shown_status(self) -> str:
        return "paused" if self.status == "running" and self.paused else self.status
