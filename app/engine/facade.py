"""The engine: what the UI, the headless runner and the backtest talk to.

One ``Engine`` per mode; the mode only chooses the clock, the feed and the broker (runner.py).
Public methods are thread-safe (one re-entrant lock guards the money state); listeners are
called from whichever engine thread produced the event and must not block.
"""

from __future__ import annotations

import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

import db
from algorithm._api import AlgoContext, set_context
from app.broker.base import (
    TERMINAL_STATUSES,
    Broker,
    BrokerError,
    OrderRequest,
    ReconcileReport,
    UnknownTickerError,
)
from app.calendar import MarketCalendar
from app.clock import Clock
from app.engine.decisions import DecisionRefused, check_against_ledger, parse_decision
from app.engine.ledger import Ledger
from app.engine.orders import SUBMIT_ATTEMPTS, OrderBook, Wanted, liquidation_order_id
from app.engine.plugins import PluginInfo, coerce_params, discover_plugins, make_class
from app.engine.sandbox import Call, PluginPool
from app.marketdata.base import Feed
from app.timeutil import floor_minute, iso_z, parse_iso, require_aware
from db.market import BadTickerError, Bar, MarketStore, check_ticker
from db.system import SystemStore

logger = logging.getLogger(__name__)

LAST_TICK_KEY = "engine.last_tick"
# Plugin calls not started this long after the tick began are skipped: the minute is over.
TICK_BUDGET_SECONDS = 40.0


@dataclass(frozen=True)
class AlgoView:
    """Everything an algorithm's card shows, derived from the ledger."""

    id: int
    name: str
    plugin: str
    ticker: str
    status: str  # running | stopped | error
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
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TickResult:
    minute: datetime
    decisions: list[dict]
    fills: list[dict]
    errors: dict[int, str]
    latency_ms: float


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

    def on_fill(self, algo_id: int, transaction: dict) -> None: ...

    def on_algorithms_changed(self) -> None: ...

    def on_bar(self, bar: Bar) -> None: ...


class EngineProvider(db.StoreProvider):
    """The seed functions' data source over the live DBs, plus a numpy fast path."""

    def last_n_closes(self, ticker: str, n: int, before: datetime | None) -> np.ndarray:
        before_ts = 2**62 if before is None else int(before.timestamp())
        rows = self.market.conn.execute(
            "SELECT c FROM bars WHERE ticker = ? AND ts < ? ORDER BY ts DESC LIMIT ?",
            (ticker, before_ts, n)).fetchall()
        return np.fromiter((r[0] for r in reversed(rows)), dtype=np.float64, count=len(rows))


@dataclass
class _Algo:
    id: int
    name: str
    plugin: str
    ticker: str
    initial_capital: float
    params: dict
    status: str
    error: str | None
    ledger: Ledger
    instance: Any = None
    busy: Call | None = None


class Engine:
    def __init__(self, *, mode: str, system: SystemStore, market: MarketStore, broker: Broker,
                 feed: Feed | None, clock: Clock, calendar: MarketCalendar,
                 plugin_dirs: list[Path] | None = None, plugin_timeout: float = 2.0,
                 provider: db.DataProvider | None = None, workers: int = 4,
                 before_tick: Callable[[datetime], Any] | None = None) -> None:
        self.mode = mode
        self.system, self.market, self.broker, self.feed = system, market, broker, feed
        self.clock, self.calendar = clock, calendar
        self.plugin_dirs = list(plugin_dirs or [])
        self.plugin_timeout = float(plugin_timeout)
        self.provider = provider or EngineProvider(system, market)
        self.before_tick = before_tick
        self.orders = OrderBook(system, broker, clock)
        self._lock = threading.RLock()
        self._pool = PluginPool(workers)
        self._listeners: list[Any] = []
        self._plugins: dict[str, PluginInfo] = {}
        self._algos: dict[int, _Algo] = {}
        self._started = False
        self._closed = False
        self._collect: list[dict[str, Any]] | None = None
        self._updates: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._updates_lock = threading.Lock()
        self._update_thread: threading.Thread | None = None
        self._subscribed: set[int] = set()
        self._closers: list[Callable[[], Any]] = []
        last = system.get_setting(LAST_TICK_KEY)
        self._last_minute: datetime | None = parse_iso(last) if last else None
        self._refresh_plugins()
        self._load_algorithms()
        broker.add_order_listener(self._on_order_update)
        if feed is not None:
            feed.add_bar_listener(self._on_bar)

    # --- set-up --------------------------------------------------------------------------
    def _refresh_plugins(self) -> list[PluginInfo]:
        infos = discover_plugins(self.plugin_dirs)
        self._plugins = {p.name: p for p in infos}
        return infos

    def _load_algorithms(self) -> None:
        txs_by_algo: dict[int, list[dict[str, Any]]] = {}
        for tx in self.system.all_transactions():
            txs_by_algo.setdefault(tx["algo_id"], []).append(tx)
        for row in self.system.list_algorithms():
            self._algos[row["id"]] = _Algo(
                row["id"], row["name"], row["plugin"], row["ticker"], row["initial_capital"],
                row["params"], row["status"], row["error"],
                Ledger.from_transactions(row["initial_capital"], txs_by_algo.get(row["id"], [])))

    def _new_instance(self, plugin: str, params: dict, ticker: str,
                      capital: float) -> tuple[Any, str | None]:
        """(plugin object, None) or (None, why it cannot be created)."""
        info = self._plugins.get(plugin)
        if info is None:
            return None, f"plugin {plugin!r} not found"
        if info.error:
            return None, f"plugin {plugin!r} is broken: {info.error}"
        try:
            cls = make_class(info, params)
        except ValueError as e:
            return None, str(e)
        call = self._pool.call(partial(self._construct, cls, ticker, capital),
                               self.plugin_timeout, key=plugin)
        if call.timed_out:
            return None, f"plugin __init__ took longer than {self.plugin_timeout:g} s"
        if call.error is not None:
            return None, f"plugin __init__ failed: {type(call.error).__name__}: {call.error}"
        return call.result, None

    def _instantiate(self, a: _Algo) -> str | None:
        """Create the plugin object for ``a``; return why not (and mark it 'error')."""
        a.instance, why = self._new_instance(a.plugin, a.params, a.ticker, a.initial_capital)
        if why:
            a.status, a.error = "error", why
            self.system.set_algorithm_status(a.id, "error", why)
            logger.error("algorithm %d (%s): %s", a.id, a.name, why)
        return why

    def _subscribe(self, a: _Algo) -> None:
        """One feed subscription per running algorithm (the feed counts them per ticker)."""
        if self.feed is not None and a.id not in self._subscribed:
            self.feed.subscribe(a.ticker)
            self._subscribed.add(a.id)

    def _unsubscribe(self, a: _Algo) -> None:
        if self.feed is not None and a.id in self._subscribed:
            self._subscribed.discard(a.id)
            self.feed.unsubscribe(a.ticker)

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
        with self._lock:
            report, txs = self.orders.reconcile()
            self._apply_txs(txs)
            running = [a for a in self._algos.values() if a.status == "running"]
            for a in running:
                if a.instance is None:
                    self._instantiate(a)
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
        return report

    # --- the tick ------------------------------------------------------------------------
    def run_tick(self, minute: datetime) -> TickResult:
        """Run every running algorithm for ``minute`` (a minute boundary) and place orders."""
        t0 = time.perf_counter()
        minute = floor_minute(require_aware(minute))
        decisions: list[dict] = []
        errors: dict[int, str] = {}
        fills: list[dict] = []
        with self._lock:
            if self._last_minute is not None and minute <= self._last_minute:
                logger.info("tick %s skipped: already ran up to %s", iso_z(minute),
                            iso_z(self._last_minute))
                return TickResult(minute, [], [], {}, 0.0)
            if self.before_tick is not None:
                try:
                    self.before_tick(minute)
                except Exception:
                    logger.exception("before-tick hook failed")
            self._collect = fills
            try:
                self._tick(minute, decisions, errors)
            finally:
                self._collect = None
        result = TickResult(minute, decisions, fills, errors,
                            (time.perf_counter() - t0) * 1000.0)
        acted = [f"{d['algo_id']}:{d['action']} {d['shares']}" for d in decisions
                 if d["action"] in ("buy", "sell")]
        logger.log(logging.INFO if acted or errors else logging.DEBUG,
                   "tick %s: %d algorithms, orders [%s], %d fills, %d problems, %.1f ms",
                   iso_z(minute), len(decisions), ", ".join(acted), len(fills), len(errors),
                   result.latency_ms)
        self._emit("on_tick", result)
        return result

    def _tick(self, minute: datetime, decisions: list[dict], errors: dict[int, str]) -> None:
        _, polled = self.orders.poll_open(minute)
        self._apply_txs(polled)
        working = self.orders.working_by_algo()
        running = [a for a in self._algos.values() if a.status == "running"]
        ts = int(minute.timestamp())
        prices = {t: self.market.latest_price(t, before_ts=ts)
                  for t in {a.ticker for a in running}}
        calls: list[Call] = []
        for a in running:
            skip = None
            if a.instance is None:
                skip = a.error or "plugin not loaded"
            elif a.busy is not None and not a.busy.done.is_set():
                skip = "skipped: its previous run() has not returned yet"
            if skip:
                errors[a.id] = skip
                decisions.append({"algo_id": a.id, "name": a.name, "ticker": a.ticker,
                                  "action": None, "shares": 0, "refused": skip})
                continue
            led = a.ledger
            ctx = AlgoContext(a.id, a.ticker, a.initial_capital, led.cash, led.position,
                              led.avg_cost, prices[a.ticker], minute)
            a.busy = Call(a.id, partial(self._invoke, a.instance, ctx, minute, a.id))
            calls.append(a.busy)
        self._pool.run_all(calls, self.plugin_timeout, budget=TICK_BUDGET_SECONDS)

        wanted: list[Wanted] = []
        for call in calls:
            a = self._algos[call.key]
            if not call.timed_out:
                a.busy = None  # a hung call keeps the algorithm busy until it returns
            why = None
            if call.skipped:
                why = "skipped: other plugins used up this minute's time"
            elif call.timed_out:
                why = f"run() took longer than {self.plugin_timeout:g} s; decision ignored"
            elif call.error is not None:
                e = call.error
                why = f"run() raised {type(e).__name__}: {str(e)[:200]}" + (
                    f" ({call.where})" if call.where else "")
            else:
                try:
                    d = parse_decision(call.result)
                    # Orders still working at the broker have claims on cash and shares.
                    buying, selling = working.get(a.id, (0, 0))
                    price = prices[a.ticker]
                    check_against_ledger(d, a.ledger.cash - buying * (price or 0.0),
                                         a.ledger.position - selling, price)
                except DecisionRefused as e:
                    why = str(e)
                else:
                    decisions.append({"algo_id": a.id, "name": a.name, "ticker": a.ticker,
                                      "action": d.action, "shares": d.shares,
                                      "refused": None})
                    if d.action != "hold":
                        wanted.append(Wanted(a.id, a.ticker, d))
                    continue
            errors[a.id] = why
            decisions.append({"algo_id": a.id, "name": a.name, "ticker": a.ticker,
                              "action": None, "shares": 0, "refused": why})

        # The intents and "this minute has run" are one transaction: after a crash the
        # minute is either not started (and may run) or done (and never runs again).
        planned, crossed, refused = self.orders.write_intents(
            wanted, minute, prices, mark=(LAST_TICK_KEY, iso_z(minute)))
        self._last_minute = minute
        self._apply_txs(crossed)
        for algo_id, why in refused.items():
            errors[algo_id] = why
        unreachable = False
        for order in planned:
            # Once the broker has failed one order through all its retries, try each of the
            # others once: a broker outage must not hold the tick for minutes.
            txs, err = self.orders.send(order, attempts=1 if unreachable else SUBMIT_ATTEMPTS)
            self._apply_txs(txs)
            if err:
                unreachable = unreachable or err.startswith("order not confirmed")
                for algo_id in order.algo_ids:
                    errors[algo_id] = err
        for algo_id, why in errors.items():
            a = self._algos.get(algo_id)
            if a is not None:
                a.error = why
                self.system.set_algorithm_error(algo_id, why)
                logger.warning("algorithm %d (%s) at %s: %s", algo_id, a.name,
                               iso_z(minute), why)

    def _invoke(self, instance: Any, ctx: AlgoContext, minute: datetime, algo_id: int) -> Any:
        """Runs on a pool thread: the plugin's ``run`` with its data and context set."""
        db.use_thread_provider(self.provider)
        set_context(ctx)
        try:
            return instance.run(minute, algo_id)
        finally:
            set_context(None)

    def _apply_txs(self, txs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Bring the in-memory ledgers up to date with newly recorded transactions."""
        out = []
        for tx in txs:
            if not tx:
                continue
            a = self._algos.get(tx["algo_id"])
            if a is not None and tx["id"] > a.ledger.last_tx_id:
                a.ledger.apply(tx)
            out.append(tx)
            if self._collect is not None:
                self._collect.append(tx)
            self._emit("on_fill", tx["algo_id"], tx)
        return out

    def _on_order_update(self, update: Any) -> None:
        """Broker listener (any thread): record the update now if the engine is free, else
        hand it to the updates thread — a broker's stream thread never waits for a tick."""
        if self._closed:
            return
        if self._lock.acquire(blocking=False):
            try:
                self._record_update(update)
            finally:
                self._lock.release()
            return
        self._updates.put(update)
        self._ensure_update_thread()

    def _record_update(self, update: Any) -> None:
        try:
            txs = self.orders.apply_update(update)
        except Exception:
            logger.exception("cannot record update for %s", update.client_order_id)
            return
        self._apply_txs(txs)

    def _ensure_update_thread(self) -> None:
        with self._updates_lock:
            if self._update_thread is None or not self._update_thread.is_alive():
                self._update_thread = threading.Thread(target=self._drain_updates,
                                                       name="order-updates", daemon=True)
                self._update_thread.start()

    def _drain_updates(self) -> None:
        while True:
            update = self._updates.get()
            if update is None:
                return
            with self._lock:
                if not self._closed:
                    self._record_update(update)

    def _on_bar(self, bar: Bar) -> None:
        self._emit("on_bar", bar)

    # --- algorithms ----------------------------------------------------------------------
    def _account(self) -> Any:
        try:
            return self.broker.get_account()
        except BrokerError as e:
            raise EngineError(f"cannot read the account from the broker: {e}") from None

    def free_capital(self) -> float:
        """The account's cash minus what running algorithms hold."""
        cash = self._account().cash
        with self._lock:
            held = sum(max(0.0, a.ledger.cash) for a in self._algos.values()
                       if a.status == "running")
        return max(0.0, cash - held)

    def create_algorithm(self, plugin: str, ticker: str, capital: float,
                         params: dict | None = None, name: str = "") -> int:
        info = self._plugins.get(plugin)
        if info is None:
            self._refresh_plugins()
            info = self._plugins.get(plugin)
        if info is None:
            raise UnknownPluginError(f"no algorithm plugin named {plugin!r}")
        if info.error:
            raise UnknownPluginError(f"plugin {plugin!r} is broken: {info.error}")
        ticker = (ticker or "").strip().upper()
        try:
            check_ticker(ticker)
        except BadTickerError as e:
            raise TickerRejectedError(str(e)) from None
        try:
            t = self.broker.get_ticker(ticker)
        except UnknownTickerError as e:
            raise TickerRejectedError(f"{ticker}: unknown to the broker ({e})") from None
        except BrokerError as e:
            raise EngineError(f"cannot check {ticker} with the broker: {e}") from None
        if not t.active:
            raise TickerRejectedError(f"{ticker} is not active")
        if not t.tradable:
            raise TickerRejectedError(f"{ticker} is not tradable")
        if isinstance(capital, bool) or not isinstance(capital, int | float) \
                or not math.isfinite(capital) or capital <= 0:
            raise EngineError(f"capital must be a positive amount, got {capital!r}")
        try:
            values = coerce_params(info, params)
        except ValueError as e:
            raise EngineError(str(e)) from None
        free = self.free_capital()  # checked again under the lock; this saves a backfill
        if capital > free + 1e-6:
            raise InsufficientCapitalError(
                f"{capital:,.2f} is more than the free capital {free:,.2f}", free)
        if self.feed is not None:
            try:
                self.feed.prepare(ticker)
            except Exception as e:
                raise EngineError(f"cannot load history for {ticker}: {e}") from None
        name = name.strip() or f"{plugin} {ticker}"
        with self._lock:  # check and take the capital atomically
            free = self.free_capital()
            if capital > free + 1e-6:
                raise InsufficientCapitalError(
                    f"{capital:,.2f} is more than the free capital {free:,.2f}", free)
            instance, why = self._new_instance(plugin, values, ticker, float(capital))
            if why:
                raise EngineError(why)
            algo_id = self.system.add_algorithm(plugin, ticker, float(capital), values, name)
            a = _Algo(algo_id, name, plugin, ticker, float(capital), values, "running", None,
                      Ledger(float(capital)), instance)
            self._algos[algo_id] = a
        self._subscribe(a)
        logger.info("created algorithm %d %r: %s on %s with %.2f", algo_id, name, plugin, ticker,
                    capital)
        self._emit("on_algorithms_changed")
        return algo_id

    def _get(self, algo_id: int) -> _Algo:
        a = self._algos.get(algo_id)
        if a is None:
            raise EngineError(f"no algorithm with id {algo_id}")
        return a

    def stop_algorithm(self, algo_id: int, liquidate: bool = False) -> None:
        """Stop running ``algo_id``; with ``liquidate`` sell its whole position at market."""
        with self._lock:
            a = self._get(algo_id)
            if a.status != "stopped":
                a.status = "stopped"
                self.system.set_algorithm_status(algo_id, "stopped")
            a.instance = None
            self._cancel_open_orders(a)
            if liquidate and a.ledger.position > 0:
                self._liquidate(a)
            self._unsubscribe(a)
        logger.info("stopped algorithm %d (%s)%s", algo_id, a.name,
                    " and sold its position" if liquidate else "")
        self._emit("on_algorithms_changed")

    def _cancel_open_orders(self, a: _Algo) -> None:
        """A stopped algorithm places nothing more: cancel what it still has working."""
        for row in self.system.orders_for(a.id):
            if row["parent"] is not None or row["status"] in TERMINAL_STATUSES \
                    or row["status"] in ("intent", "filled"):
                continue
            try:
                self.broker.cancel_order(row["client_order_id"])
                logger.info("canceled open order %s of stopped algorithm %d",
                            row["client_order_id"], a.id)
            except BrokerError as e:
                logger.warning("cannot cancel order %s: %s", row["client_order_id"], e)

    def _liquidate(self, a: _Algo) -> None:
        now = self.clock.now()
        coid = liquidation_order_id(a.id, now, self.orders.prefix)
        qty = a.ledger.position
        try:
            self.system.insert_order_row(coid, a.id, a.ticker, "sell", qty,
                                         iso_z(floor_minute(now)), reason="liquidation on stop")
        except sqlite3.IntegrityError:
            raise EngineError(f"a sale of {a.ticker} for this algorithm was sent a moment "
                              "ago; try again in a second") from None
        try:
            update = self.broker.submit_order(OrderRequest(coid, a.ticker, "sell", qty))
        except BrokerError as e:
            self.system.update_order(coid, status="rejected" if not e.retryable else "intent",
                                     reason=str(e))
            raise EngineError(f"could not sell {a.ticker}: {e}") from None
        self._apply_txs(self.orders.apply_update(update))
        if update.status == "rejected":
            raise EngineError(f"the broker refused to sell {qty} {a.ticker}: {update.reason}")

    def resume_algorithm(self, algo_id: int) -> None:
        with self._lock:
            a = self._get(algo_id)
            if a.status == "running":
                return
            a.status, a.error, a.busy = "running", None, None
            self.system.set_algorithm_status(algo_id, "running")
            self.system.set_algorithm_error(algo_id, None)
            self._refresh_plugins()
            self._instantiate(a)
        if a.status == "running" and self.feed is not None:
            try:
                self.feed.prepare(a.ticker)
            except Exception as e:
                logger.warning("cannot prepare history for %s: %s", a.ticker, e)
            self._subscribe(a)
        self._emit("on_algorithms_changed")

    def delete_algorithm(self, algo_id: int) -> None:
        """Stop (keeping the position) and hide; its orders and transactions stay in the DB."""
        self.stop_algorithm(algo_id)
        with self._lock:
            self.system.set_algorithm_status(algo_id, "deleted")
            self._algos.pop(algo_id, None)
        self._emit("on_algorithms_changed")

    def stop_all(self, liquidate: bool = False) -> None:
        """The panic button: stop every running algorithm (and sell, with ``liquidate``)."""
        failures = []
        for a in list(self._algos.values()):
            if a.status == "running" or (liquidate and a.ledger.position > 0):
                try:
                    self.stop_algorithm(a.id, liquidate=liquidate)
                except EngineError as e:
                    failures.append(str(e))
        if failures:
            raise EngineError("; ".join(failures))

    # --- views ---------------------------------------------------------------------------
    def _view(self, a: _Algo, price: float | None) -> AlgoView:
        led = a.ledger
        return AlgoView(
            id=a.id, name=a.name, plugin=a.plugin, ticker=a.ticker, status=a.status,
            error=a.error, initial_capital=a.initial_capital, cash=led.cash,
            position=led.position, avg_cost=led.avg_cost, last_price=price,
            value=led.value(price), pnl=led.pnl(price), pnl_pct=led.pnl_pct(price),
            realised=led.realised, unrealised=led.unrealised(price), params=dict(a.params))

    def algorithm_views(self) -> list[AlgoView]:
        with self._lock:
            algos = sorted(self._algos.values(), key=lambda a: a.id)
            prices = {t: self.market.latest_price(t) for t in {a.ticker for a in algos}}
            return [self._view(a, prices[a.ticker]) for a in algos]

    def algorithm_view(self, algo_id: int) -> AlgoView:
        with self._lock:
            a = self._get(algo_id)
            return self._view(a, self.market.latest_price(a.ticker))

    def account_summary(self) -> dict:
        acct = self._account()
        with self._lock:
            held = sum(max(0.0, a.ledger.cash) for a in self._algos.values()
                       if a.status == "running")
        return {"cash": acct.cash, "equity": acct.equity, "free": max(0.0, acct.cash - held),
                "mode": self.mode, "broker": self.broker.name}

    def plugins(self) -> list[PluginInfo]:
        with self._lock:
            return self._refresh_plugins()

    @property
    def in_tick(self) -> bool:
        """True while ``run_tick`` is placing orders (fills then belong to that tick)."""
        return self._collect is not None

    @property
    def last_minute(self) -> datetime | None:
        return self._last_minute

    # --- listeners -----------------------------------------------------------------------
    def add_listener(self, listener: Any) -> None:
        self._listeners.append(listener)

    def _emit(self, method: str, *args: Any) -> None:
        for lst in list(self._listeners):
            fn = getattr(lst, method, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception:
                logger.exception("engine listener %s.%s failed", type(lst).__name__, method)

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
        if self._update_thread is not None:
            self._updates.put(None)
            self._update_thread.join(timeout=5)
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
