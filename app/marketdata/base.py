"""What every bar source offers the engine and the UI.

A feed stores each bar in the market DB first, then hands it to listeners (from its own
thread). ``subscribe``/``unsubscribe`` are reference-counted by ``SubscriptionSet``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from db.market import Bar

BarListener = Callable[[Bar], None]


@dataclass(frozen=True)
class FeedStatus:
    state: str  # "connecting", "connected", "reconnecting", "error", "stopped", "simulated"
    detail: str = ""


StatusListener = Callable[[FeedStatus], None]


@dataclass(frozen=True)
class TickerStatus:
    """What the feed knows about one ticker, for the engine and the algorithm's card.

    ``state``: "subscribed", "pending" (asked, no answer yet), "refused" (the server refused
    this symbol: ``detail`` says why; the other tickers are unaffected), "unsubscribed".
    ``halted``: a trading halt or LULD pause is in force (from the ``statuses`` channel);
    ``halt_reason`` is the exchange's reason. ``last_bar_ts``: newest bar's minute (epoch s)."""

    ticker: str
    state: str = "unsubscribed"
    detail: str = ""
    halted: bool = False
    halt_reason: str = ""
    last_bar_ts: int | None = None


TickerStatusListener = Callable[[TickerStatus], None]


class Feed(Protocol):
    def prepare(self, ticker: str) -> None:
        """Make sure the market DB holds the history plugins need for ``ticker`` (backfill from
        Alpaca; synthetic history in the demo). May take seconds: never call on the GUI thread."""
        ...

    def subscribe(self, ticker: str) -> None:
        """One more user of ``ticker`` (reference-counted, see ``SubscriptionSet``)."""
        ...

    def unsubscribe(self, ticker: str) -> None:
        """One user fewer; the last one to leave unsubscribes on the wire."""
        ...

    def add_bar_listener(self, listener: BarListener) -> None: ...

    def add_status_listener(self, listener: StatusListener) -> None: ...

    @property
    def status(self) -> FeedStatus: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...
