"""The engine core's shared state, declared once for the mixins that make up ``Engine``.

``Engine`` (facade.py) is ``TickPlanner + Lifecycle + BrokerIntake + CorporateDesk``; each
mixin reads attributes set in ``Engine.__init__`` and calls methods another mixin defines.
``EngineCore`` declares them with their types so the type checker reads every mixin on its
own. The method declarations exist for the checker only (``TYPE_CHECKING``): at run time the
real ones come from the mixins and the facade, earlier in the MRO.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import db
    from app.broker.base import Broker, OrderUpdate
    from app.clock import Clock
    from app.engine.brokerio import BrokerIO
    from app.engine.guards import GuardBook
    from app.engine.model import AlgoState
    from app.engine.orders import OrderBook
    from app.engine.plugins import PluginInfo
    from app.engine.sandbox import PluginPool
    from app.listeners import Listeners
    from app.marketdata.base import Feed
    from db.calendar import MarketCalendar
    from db.market import MarketStore
    from db.system import SystemStore, Transaction


logger = logging.getLogger(__name__)


class CoreLock:
    """The core's re-entrant lock. Work handed to ``later`` while the calling thread holds it
    runs on that thread right after its outermost release: listeners (fills, ticks, status
    changes) are never called under the lock, so a listener that waits for another thread
    which needs the core cannot deadlock it, and a slow listener never holds the panic button.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._local = threading.local()

    def __enter__(self) -> CoreLock:
        self._lock.acquire()
        self._local.depth = getattr(self._local, "depth", 0) + 1
        return self

    def __exit__(self, *exc: object) -> None:
        depth = self._local.depth - 1
        self._local.depth = depth
        pending: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        if depth == 0:
            pending = getattr(self._local, "pending", None) or []
            self._local.pending = []
        self._lock.release()
        for fn, args in pending:
            try:
                fn(*args)
            except Exception:  # a listener's problem never undoes or breaks the step
                logger.exception("deferred engine call %s failed", getattr(fn, "__name__", fn))

    def held(self) -> bool:
        """Does the calling thread hold the lock?"""
        return getattr(self._local, "depth", 0) > 0

    def later(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` once this thread has released the lock (now if it does not hold
        it)."""
        if not self.held():
            fn(*args)
            return
        pending = getattr(self._local, "pending", None)
        if pending is None:
            pending = self._local.pending = []
        pending.append((fn, args))


class EngineCore:
    """Attributes ``Engine.__init__`` sets; see facade.py for what each one holds."""

    mode: str
    system: SystemStore
    market: MarketStore
    broker: Broker
    feed: Feed | None
    clock: Clock
    calendar: MarketCalendar
    plugin_dirs: list[Path]
    plugin_timeout: float
    provider: db.DataProvider
    before_tick: Callable[[datetime], Any] | None
    market_block: str | None
    orders: OrderBook
    io: BrokerIO
    guards: GuardBook
    _lock: CoreLock
    _tick_lock: threading.Lock
    _external: dict[str, float] | None
    _acked: dict[str, float]
    _broker_positions: dict[str, float]
    _last_watch: datetime | None
    _clock_day: str | None
    _clock_checked: datetime | None
    _inflight: dict[str, tuple[int, ...]]
    _pool: PluginPool
    _listeners: Listeners[Any]
    _snap_pending: set[int]
    _plugins: dict[str, PluginInfo]
    _algos: dict[int, AlgoState]
    _started: bool
    _closed: bool
    _collect: list[Transaction] | None
    _subscribed: set[int]
    _closers: list[Callable[[], Any]]
    _last_minute: datetime | None

    if TYPE_CHECKING:
        # facade.py
        def _emit(self, method: str, *args: Any) -> None: ...
        def _snapshot_later(self, algo_id: int) -> None: ...
        def _refresh_plugins(self) -> list[PluginInfo]: ...
        def _construct(self, cls: type, ticker: str, capital: float) -> Any: ...
        # lifecycle.py
        def _instantiate(self, a: AlgoState) -> str | None: ...
        def _adopt_started(self, timeout: float) -> None: ...
        def _subscribe(self, a: AlgoState) -> None: ...
        def _unsubscribe(self, a: AlgoState) -> None: ...
        def _stop_locked(self, a: AlgoState, why: str | None,
                         liquidate: bool) -> Future[None]: ...
        def _cancel(self, coid: str, unconfirmed: bool = False) -> None: ...
        # intake.py
        def _apply_txs(self, txs: list[Transaction]) -> list[Transaction]: ...
        def _record_update(self, update: OrderUpdate) -> None: ...
        def _feed_hold(self, ticker: str, minute: datetime,
                       seen: dict[str, str | None]) -> str | None: ...
        def _halted_reason(self, ticker: str) -> str | None: ...
        def _acknowledge_difference(self, ticker: str) -> None: ...
        def watch_positions(self, minute: datetime | None = None) -> list[int]: ...
        def _persist_holds(self) -> None: ...
        # corporate.py
        def _corporate_before_tick(self, minute: datetime) -> None: ...
