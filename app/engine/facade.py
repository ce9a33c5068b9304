"""The engine: what the UI, the headless runner and the backtest talk to.

One ``Engine`` per mode; the mode only chooses the clock, the feed and the broker (runner.py).
The engine is split by job, each in its own module, all sharing one core:

- ``tick.py``       the tick planner (plan -> write intents -> send), risk guards applied;
- ``lifecycle.py``  create, stop, stop all, resume, delete;
- ``intake.py``     broker updates coming back as events, the position watch;
- ``facade.py``     the core's state, start/close, read models for the UI, listeners.

The core owns the money state (ledgers, orders, algorithm states) and guards it with one lock
held only for short steps (memory and SQLite); broker and network I/O never run while it is
held, so stop, stop all, resume, create and delete answer within a second whatever the
broker or a plugin does. Listeners are called from engine threads, never under that lock
(CoreLock in core.py), and should hand over rather than block.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import db
from app.broker.base import Broker, ReconcileReport
from app.clock import Clock
from app.engine.brokerio import BrokerIO
from app.engine.core import CoreLock
from app.engine.corporate import CorporateDesk
from app.engine.guard_edit import GuardEditor, guard_book
from app.engine.guards import RiskLimits
from app.engine.intake import BrokerIntake
from app.engine.ledger import Ledger
from app.engine.lifecycle import Lifecycle
from app.engine.model import (
    EXTERNAL_KEY,
    GUARDS_KEY,
    LAST_TICK_KEY,
    AccountSummary,
    AlgoState,
    AlgoView,
    EngineError,
    EngineListener,
    EngineProvider,
    InsufficientCapitalError,
    TickerRejectedError,
    TickResult,
    UnknownPluginError,
)
from app.engine.orders import OrderBook
from app.engine.plugins import PluginInfo, discover_plugins
from app.engine.sandbox import PluginPool
from app.engine.storage import replay_journal
from app.engine.tick import TICK_BUDGET_SECONDS, TickPlanner
from app.listeners import Listeners
from app.marketdata.base import Feed
from db.calendar import MarketCalendar
from db.corporate import events as corporate_events
from db.market import Bar, MarketStore
from db.system import SystemStore, Transaction
from db.timeutil import parse_iso

logger = logging.getLogger(__name__)

__all__ = [
    "AlgoView", "Engine", "EngineError", "EngineListener", "EngineProvider",
    "InsufficientCapitalError", "LAST_TICK_KEY", "TICK_BUDGET_SECONDS", "TickResult",
    "TickerRejectedError", "UnknownPluginError",
]


class Engine(TickPlanner, Lifecycle, BrokerIntake, CorporateDesk, GuardEditor):
    def __init__(self, *, mode: str, system: SystemStore, market: MarketStore, broker: Broker,
                 feed: Feed | None, clock: Clock, calendar: MarketCalendar,
                 plugin_dirs: list[Path] | None = None, plugin_timeout: float = 2.0,
                 provider: db.DataProvider | None = None, workers: int = 4,
                 before_tick: Callable[[datetime], Any] | None = None,
                 risk: RiskLimits | None = None) -> None:
        self.mode = mode
        self.system, self.market, self.broker, self.feed = system, market, broker, feed
        self.clock, self.calendar = clock, calendar
        self.plugin_dirs = list(plugin_dirs or [])
        self.plugin_timeout = float(plugin_timeout)
        self.provider = provider or EngineProvider(system, market)
        self.before_tick = before_tick
        # The core's lock: the money state, in short steps only (never around broker I/O);
        # listeners are called after it is released (CoreLock.later).
        self._lock = CoreLock()
        self._tick_lock = threading.Lock()  # one tick (or start) at a time
        self.orders = OrderBook(system, broker, clock, lock=self._lock)
        self.orders.on_rejected = self._on_rejected
        self.io = BrokerIO(broker)
        self.guards = guard_book(system, risk or RiskLimits())  # config + changes made live
        self.guards.load(system.get_setting(GUARDS_KEY))
        ext = system.get_setting(EXTERNAL_KEY)
        self._external: dict[str, float] | None = None if ext is None else {
            k: float(v) for k, v in json.loads(ext).items()}
        self._acked: dict[str, float] = {}
        self._broker_positions: dict[str, float] = {}
        self._last_watch: datetime | None = None
        self._clock_day: str | None = None
        self._clock_checked: datetime | None = None
        self.market_block: str | None = None  # the broker says closed: nothing is sent
        self._inflight: dict[str, tuple[int, ...]] = {}
        self._pool = PluginPool(workers)
        self._listeners: Listeners[Any] = Listeners("engine listener")
        self._snap_pending: set[int] = set()  # algorithms whose snapshot is queued
        self._plugins: dict[str, PluginInfo] = {}
        self._algos: dict[int, AlgoState] = {}
        self._started = False
        self._closed = False
        self._collect: list[Transaction] | None = None
        self._subscribed: set[int] = set()
        self._closers: list[Callable[[], Any]] = []
        last = system.get_setting(LAST_TICK_KEY)
        self._last_minute: datetime | None = parse_iso(last) if last else None
        self._refresh_plugins()
        replay_journal(system)  # stops/resumes a killed run held back (storage.py)
        self._load_algorithms()
        self._restore_holds()  # refusal counts, cool-downs, pauses (intake.py)
        broker.add_order_listener(self._on_order_update)
        if feed is not None:
            feed.add_bar_listener(self._on_bar)

    # --- set-up --------------------------------------------------------------------------
    def _refresh_plugins(self) -> list[PluginInfo]:
        infos = discover_plugins(self.plugin_dirs)
        self._plugins = {p.name: p for p in infos}
        return infos

    def _load_algorithms(self) -> None:
        txs_by_algo: dict[int, list[Transaction]] = {}
        for tx in self.system.all_transactions():
            txs_by_algo.setdefault(tx["algo_id"], []).append(tx)
        evs_by_algo: dict[int, list[dict[str, Any]]] = {}  # splits, dividends (corporate.py)
        for ev in corporate_events(self.system):
            evs_by_algo.setdefault(ev["algo_id"], []).append(ev)
        for row in self.system.list_algorithms():
            self._algos[row["id"]] = AlgoState(
                row["id"], row["name"], row["plugin"], row["ticker"], row["initial_capital"],
                row["params"], row["status"], row["error"],
                Ledger.from_transactions(row["initial_capital"], txs_by_algo.get(row["id"], []),
                                         evs_by_algo.get(row["id"], [])))

    def _construct(self, cls: type, ticker: str, capital: float) -> Any:
        """Runs on a pool thread: the plugin's ``__init__`` (it may read data already)."""
        db.use_thread_provider(self.provider)
        return cls(ticker, capital)

    def start(self) -> ReconcileReport:
        """Reconcile with the broker, load the running algorithms, prepare and subscribe.

        Call once, before the first tick; a second call does nothing."""
        if self._started:
            return ReconcileReport()
        if db._provider is None:  # for code outside plugin calls; plugins get a thread's own
            db.use_provider(self.provider)
        with self._tick_lock:
            report, txs = self.orders.reconcile()  # broker I/O, no core lock
            with self._lock:
                self._apply_txs(txs)
                running = [a for a in self._algos.values() if a.status == "running"]
            for a in running:
                if a.instance is None:
                    self._instantiate(a)
            if self.mode != "backtest":  # splits and dividends due today, before the watch
                self._corporate_at_start()
            self._start_watch(report)
        if self.feed is not None:
            for ticker in sorted({a.ticker for a in running if a.status == "running"}):
                try:
                    self.feed.prepare(ticker)
                except Exception as e:
                    logger.warning("cannot prepare history for %s: %s", ticker, e)
                for a in running:
                    if a.ticker == ticker and a.status == "running":
                        self._subscribe(a)
            self.feed.start()
        self._started = True
        logger.info("engine started in %s mode: %d running algorithms, reconcile: %d orders "
                    "updated, %d position differences", self.mode,
                    sum(a.status == "running" for a in self._algos.values()),
                    len(report.orders_updated), len(report.position_diffs))
        self._emit("on_algorithms_changed")
        if self.mode != "backtest":
            # What is loaded by now (modules, calendars, caches) lives as long as the app:
            # kept out of the collector's full passes, which otherwise cost ~50 ms inside a
            # tick every 20 minutes or so (the objects made later are still collected).
            gc.collect()
            gc.freeze()
        return report

    def _start_watch(self, report: ReconcileReport) -> None:
        """First start: record the broker's other shares as external. Later starts: pause
        the tickers whose positions differ (the broker is the source of truth)."""
        if self.mode == "backtest":
            return
        try:
            pos = self.broker.get_positions()
        except Exception as e:
            logger.warning("cannot read the broker's positions at start: %s", e)
            return
        with self._lock:
            if self._external is None:
                self._record_external(pos)
            self._compare_positions(pos)

    # --- read models ---------------------------------------------------------------------
    def _view(self, a: AlgoState, price: float | None) -> AlgoView:
        led = a.ledger
        return AlgoView(
            id=a.id, name=a.name, plugin=a.plugin, ticker=a.ticker, status=a.shown_status,
            error=a.error, initial_capital=a.initial_capital, cash=led.cash,
            position=led.position, avg_cost=led.avg_cost, last_price=price,
            value=led.value(price), pnl=led.pnl(price), pnl_pct=led.pnl_pct(price),
            realised=led.realised, unrealised=led.unrealised(price), params=dict(a.params))

    def algorithm_views(self) -> list[AlgoView]:
        with self._lock:
            tickers = {a.ticker for a in self._algos.values()}
        prices = {t: self.market.latest_price(t) for t in tickers}
        with self._lock:
            algos = sorted(self._algos.values(), key=lambda a: a.id)
            return [self._view(a, prices.get(a.ticker)) for a in algos]

    def algorithm_view(self, algo_id: int) -> AlgoView:
        with self._lock:
            ticker = self._get(algo_id).ticker
        price = self.market.latest_price(ticker)
        with self._lock:
            return self._view(self._get(algo_id), price)

    def account_summary(self) -> AccountSummary:
        acct = self.io.account()
        with self._lock:
            free = self._free_from(acct.cash)
        return {"cash": acct.cash, "equity": acct.equity, "free": free,
                "last_equity": acct.last_equity,
                "mode": self.mode, "broker": self.broker.name,
                "halted": self.status_problem, "storage": self.storage_problem}

    def plugins(self) -> list[PluginInfo]:
        return self._refresh_plugins()

    @property
    def in_tick(self) -> bool:
        """True while ``run_tick`` is placing orders (fills then belong to that tick)."""
        return self._collect is not None

    @property
    def last_minute(self) -> datetime | None:
        return self._last_minute

    # --- listeners -----------------------------------------------------------------------
    def _on_bar(self, bar: Bar) -> None:
        self._emit("on_bar", bar)

    def add_listener(self, listener: Any) -> None:
        """``listener``'s ``on_*`` methods (those it has) hear the engine's events."""
        self._listeners.add(listener)

    def _emit(self, method: str, *args: Any) -> None:
        """Call ``method`` on every listener, never under the core's lock: from inside a
        locked step the calls wait until that step's outermost release (same thread)."""
        self._lock.later(self._emit_now, method, *args)

    def _emit_now(self, method: str, *args: Any) -> None:
        def call(listener: Any) -> None:
            fn = getattr(listener, method, None)
            if fn is not None:
                fn(*args)

        self._listeners.each(call, method)

    def _snapshot_later(self, algo_id: int) -> None:
        """Push ``on_snapshot`` for ``algo_id`` once the current locked step is over (one per
        algorithm per step, however many fills it recorded)."""
        if not any(hasattr(lst, "on_snapshot") for lst in self._listeners):
            return
        with self._lock:
            if algo_id in self._snap_pending:
                return
            self._snap_pending.add(algo_id)
            self._lock.later(self._push_snapshot, algo_id)

    def _push_snapshot(self, algo_id: int) -> None:
        with self._lock:
            self._snap_pending.discard(algo_id)
            a = self._algos.get(algo_id)
            ticker = a.ticker if a is not None else None
        if ticker is None:
            return
        price = self.market.latest_price(ticker)
        with self._lock:
            a = self._algos.get(algo_id)
            if a is None:
                return
            view = self._view(a, price)
        self._emit("on_snapshot", view, self.io.cached_account())

    def call_on_close(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` when the engine closes (the runner's single-instance lock)."""
        self._closers.append(fn)

    def close(self) -> None:
        """Stop the feed and the plugin threads, close the broker. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self.feed is not None:
            try:
                self.feed.stop()
            except Exception:
                logger.exception("feed did not stop cleanly")
        self._pool.close()
        self.io.close()
        try:
            self.broker.close()
        except Exception:
            logger.exception("broker did not close cleanly")
        if db._provider is self.provider:
            db.use_provider(None)
        for fn in self._closers:
            try:
                fn()
            except Exception:
                logger.exception("closing %s failed", fn)
