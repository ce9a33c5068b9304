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


class Feed(Protocol):
    def subscribe(self, ticker: str) -> None: ...

    def unsubscribe(self, ticker: str) -> None: ...

    def add_bar_listener(self, listener: BarListener) -> None: ...

    def add_status_listener(self, listener: StatusListener) -> None: ...

    @property
    def status(self) -> FeedStatus: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...
