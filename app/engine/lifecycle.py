"""Algorithm lifecycle: create, stop, stop all, resume, delete (the UI's requests).

Every request changes the money state in one short step under the core's lock and never
waits there for the broker. What needs the broker afterwards (cancelling open orders, the sale
of "stop and sell") is written first (the sale as an intent row) and then done by a broker-job
thread; that work is waited for at most ``LIQUIDATION_WAIT`` seconds so that a quick broker
still answers "cancelled", "sold" or "refused", and a slow one never holds the panic button.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from functools import partial
from typing import Any

from app.broker.base import TERMINAL_STATUSES, BrokerError, OrderRequest, UnknownTickerError
from app.engine.brokerio import spawn
from app.engine.core import EngineCore
from app.engine.ledger import Ledger
from app.engine.model import (
    AlgoState,
    EngineError,
    InsufficientCapitalError,
    NewInstance,
    TickerRejectedError,
    UnknownPluginError,
)
from app.engine.orders import liquidation_order_id
from app.engine.plugins import PluginInfo, coerce_params, make_class
from app.engine.storage import FULL_ADVICE, LOCKED_ADVICE, DeferredWrites, classify
from db.market import BadTickerError, check_ticker
from db.timeutil import floor_minute, iso_z

logger = logging.getLogger(__name__)

# Seconds a stop waits for the broker's answer to its cancels (and sale): a quick broker's
# result is known when the call returns; a slow one's continues in the background.
LIQUIDATION_WAIT = 0.6
# Seconds create/resume wait for the plugin's ``__init__``; a slower one (or one queued behind
# a hung plugin) finishes in the background and the algorithm starts trading once it has.
PLUGIN_WAIT = 0.6
# How long a stop (the panic button, a card's Stop) waits for a DB write lock held elsewhere
# before its rows wait in DeferredWrites (the stop itself takes effect in memory at once).
PANIC_LOCK_WAIT_MS = 300
# Seconds a create keeps trying while another process holds the DB's write lock (each try
# waits the connection's busy timeout, 5 s, the core lock let go in between).
CREATE_WAIT = 12.0


def _stop_row(algo_id: int, why: str | None) -> list[list[Any]]:
    return [["status", algo_id, "stopped", why]]


def _not_saved(what: str, kind: str, e: BaseException) -> str:
    """The message for a request refused because the DB takes no writes."""
    if kind == "locked":
        return (f"{what}: the database is locked by another process ({e}); {LOCKED_ADVICE}, "
                "then try again (nothing was changed)")
    if kind == "full":
        return f"{what}: the disk is full ({e}); {FULL_ADVICE} (nothing was changed)"
    return f"{what}: the database cannot be written ({e}); nothing was changed"


class Lifecycle(EngineCore):
    """Mixed into ``Engine``; uses the core's attributes (``_lock``, ``_algos``, ``io``...)."""


    # --- plugins -------------------------------------------------------------------------
    def _new_instance(self, plugin: str, params: dict[str, Any], ticker: str,
                      capital: float) -> NewInstance:
        """(plugin object, None) or (None, why it cannot be created). No lock held: a plugin
        ``__init__`` may take up to the plugin time limit."""
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

    def _instantiate(self, a: AlgoState) -> str | None:
        """Create the plugin object for ``a`` (outside the lock); return why not (and mark
        the algorithm 'error')."""
        instance, why = self._new_instance(a.plugin, a.params, a.ticker, a.initial_capital)
        return self._adopt(a, instance, why)

    def _instantiate_soon(self, a: AlgoState) -> None:
        """``_instantiate`` with at most ``PLUGIN_WAIT`` s of waiting; the rest in the
        background (the tick skips the algorithm until its object exists)."""
        fut = spawn(self._new_instance, a.plugin, a.params, a.ticker, a.initial_capital)
        try:
            fut.result(timeout=PLUGIN_WAIT)
        except TimeoutError:
            logger.info("algorithm %d (%s): plugin still starting; it joins when ready",
                        a.id, a.name)
        self._adopt_later(a, fut)

    def _adopt_later(self, a: AlgoState, fut: Future[NewInstance]) -> None:
        with self._lock:
            a.starting = fut
        fut.add_done_callback(lambda f: self._adopt(a, *f.result()) if not f.exception()
                              else None)

    def _adopt_started(self, timeout: float) -> None:
        """The tick, before planning (no lock): wait up to ``timeout`` s for plugin objects
        still being created, and take the finished ones."""
        with self._lock:
            starting = [a for a in self._algos.values() if a.starting is not None]
        if not starting:
            return
        wait_futures([f for a in starting if (f := a.starting) is not None], timeout=timeout)
        for a in starting:
            f = a.starting
            if f is not None and f.done():
                if f.exception() is None:
                    self._adopt(a, *f.result())
                a.starting = None

    def _adopt(self, a: AlgoState, instance: Any, why: str | None) -> str | None:
        with self._lock:
            if a.instance is not None:
                return None
            if a.status != "running":
                return None  # stopped meanwhile: the object is not needed
            if why:
                a.status, a.error, a.instance = "error", why, None
                DeferredWrites.of(self.system).save([["status", a.id, "error", why]],
                                                    f"the error of algorithm {a.id}")
                logger.error("algorithm %d (%s): %s", a.id, a.name, why)
            else:
                a.instance = instance
        return why

    def _subscribe(self, a: AlgoState) -> None:
        """One feed subscription per running algorithm (the feed counts them per ticker)."""
        if self.feed is not None and a.id not in self._subscribed:
            self._subscribed.add(a.id)
            self.feed.subscribe(a.ticker)

    def _unsubscribe(self, a: AlgoState) -> None:
        if self.feed is not None and a.id in self._subscribed:
            self._subscribed.discard(a.id)
            try:
                self.feed.unsubscribe(a.ticker)
            except Exception:
                logger.exception("cannot unsubscribe %s", a.ticker)

    # --- create --------------------------------------------------------------------------
    def free_capital(self) -> float:
        """The account's cash minus what the algorithms hold: every one that is not stopped
        (running, failing, paused, error) and every stopped one still holding shares."""
        cash = self.io.account().cash
        with self._lock:
            return self._free_from(cash)

    def _free_from(self, cash: float) -> float:
        held = sum(max(0.0, a.ledger.cash) for a in self._algos.values()
                   if a.status != "stopped" or a.ledger.position != 0)
        return max(0.0, cash - held)

    def create_algorithm(self, plugin: str, ticker: str, capital: float,
                         params: dict[str, Any] | None = None, name: str = "") -> int:
        info = self._usable_plugin(plugin)
        ticker = (ticker or "").strip().upper()
        try:
            check_ticker(ticker)
        except BadTickerError as e:
            raise TickerRejectedError(str(e)) from None
        if isinstance(capital, bool) or not isinstance(capital, int | float) \
                or not math.isfinite(capital) or capital <= 0:
            raise EngineError(f"capital must be a positive amount, got {capital!r}")
        try:
            values = coerce_params(info, params)
        except ValueError as e:
            raise EngineError(str(e)) from None
        self._check_tradable(ticker)
        cash = self.io.account().cash
        with self._lock:
            free = self._free_from(cash)
        if capital > free + 1e-6:
            raise InsufficientCapitalError(
                f"{capital:,.2f} is more than the free capital {free:,.2f}", free)
        if self.feed is not None:
            try:
                self.feed.prepare(ticker)
            except Exception as e:
                raise EngineError(f"cannot load history for {ticker}: {e}") from None
        fut = spawn(self._new_instance, plugin, values, ticker, float(capital))
        instance = None
        try:
            instance, why = fut.result(timeout=PLUGIN_WAIT)
        except TimeoutError:
            why = None  # still starting (a slow __init__, or queued behind a hung plugin)
        if why:
            raise EngineError(why)
        name = name.strip() or f"{plugin} {ticker}"
        a = self._add_row(plugin, ticker, float(capital), values, name, cash, instance)
        if instance is None:
            self._adopt_later(a, fut)
        self._subscribe(a)
        logger.info("created algorithm %d %r: %s on %s with %.2f", a.id, name, plugin, ticker,
                    capital)
        self._emit("on_algorithms_changed")
        return a.id

    def _add_row(self, plugin: str, ticker: str, capital: float, values: dict[str, Any],
                 name: str,
                 cash: float, instance: Any) -> AlgoState:
        """Check and take the capital and write the algorithm's row, atomically. While
        another process holds the DB's write lock this is tried again (the core lock let go
        between tries, so the panic button is never held up) for up to ``CREATE_WAIT`` s, and
        then refused with what to do: nothing was created, nothing taken."""
        deadline = time.monotonic() + CREATE_WAIT
        while True:
            with self._lock:
                free = self._free_from(cash)
                if capital > free + 1e-6:
                    raise InsufficientCapitalError(
                        f"{capital:,.2f} is more than the free capital {free:,.2f}", free)
                try:
                    algo_id = self.system.add_algorithm(plugin, ticker, capital, values, name)
                except (sqlite3.OperationalError, sqlite3.DatabaseError) as e:
                    kind = classify(e)
                    if kind is None:
                        raise
                    if kind != "locked" or time.monotonic() >= deadline:
                        raise EngineError(_not_saved("not created", kind, e)) from None
                    logger.warning("create %s on %s: the database is locked by another "
                                   "process (%s); trying again", plugin, ticker, e)
                else:
                    a = AlgoState(algo_id, name, plugin, ticker, capital, values, "running",
                                  None, Ledger(capital), instance)
                    self._algos[algo_id] = a
                    self.guards.reset(algo_id, capital)
                    return a
            time.sleep(0.2)

    def _usable_plugin(self, plugin: str) -> PluginInfo:
        """The plugin's info (the folder read again if it is not known yet), or why not."""
        info = self._plugins.get(plugin)
        if info is None:
            self._refresh_plugins()
            info = self._plugins.get(plugin)
        if info is None:
            raise UnknownPluginError(f"no algorithm plugin named {plugin!r}")
        if info.error:
            raise UnknownPluginError(f"plugin {plugin!r} is broken: {info.error}")
        return info

    def _check_tradable(self, ticker: str) -> None:
        """Ask the broker: a ticker it does not know, or cannot trade, is refused."""
        try:
            t = self.io.ask(f"check {ticker}", partial(self.broker.get_ticker, ticker))
        except EngineError as e:
            if isinstance(e.__cause__, UnknownTickerError):
                raise TickerRejectedError(
                    f"{ticker}: unknown to the broker ({e.__cause__})") from None
            raise
        if not t.active:
            raise TickerRejectedError(f"{ticker} is not active")
        if not t.tradable:
            raise TickerRejectedError(f"{ticker} is not tradable")

    def _get(self, algo_id: int) -> AlgoState:
        a = self._algos.get(algo_id)
        if a is None:
            raise EngineError(f"no algorithm with id {algo_id}")
        return a

    # --- stop ----------------------------------------------------------------------------
    def _stop_locked(self, a: AlgoState, why: str | None, liquidate: bool) -> Future[None]:
        """Under the lock: mark ``a`` stopped (so none of its orders is sent from now on),
        write the sale's intent if asked, and queue the broker work. Returns the job.
        A DB locked by another process does not hold the stop up: its writes wait."""
        writes = DeferredWrites.of(self.system)
        if a.status != "stopped":
            a.status = "stopped"
            writes.save(_stop_row(a.id, why), f"the stop of algorithm {a.id}")
        elif why:
            writes.save([["error", a.id, why]], f"the stop reason of algorithm {a.id}")
        if why:
            a.error = why
        a.instance, a.paused, a.busy = None, None, None
        self._snapshot_later(a.id)
        sale = None
        if liquidate and a.ledger.position > 0:
            now = self.clock.now()
            coid = liquidation_order_id(a.id, now, self.orders.prefix)
            qty = a.ledger.position
            try:
                if writes.pending:  # the DB takes no writes: no sale without its intent
                    raise sqlite3.OperationalError("database is locked")
                self.system.insert_order_row(coid, a.id, a.ticker, "sell", qty,
                                             iso_z(floor_minute(now)),
                                             reason="liquidation on stop")
            except sqlite3.IntegrityError:
                raise EngineError(f"a sale of {a.ticker} for this algorithm was sent a moment "
                                  "ago; try again in a second") from None
            except sqlite3.OperationalError as e:
                if classify(e) not in ("locked", "full"):
                    raise
                raise EngineError(f"{a.id}: stopped, but {qty} {a.ticker} not sold: the "
                                  "database is locked by another process or the disk is full, "
                                  "so the sale cannot be recorded; sell again once it takes "
                                  "writes") from None
            sale = OrderRequest(coid, a.ticker, "sell", qty)
        if why:
            logger.warning("algorithm %d (%s) stopped: %s", a.id, a.name, why)
        return self.io.submit(self._wind_down, a.id, sale)

    def _wind_down(self, algo_id: int, sale: OrderRequest | None) -> None:
        """Broker-job thread: cancel what the stopped algorithm has open, then sell."""
        self._cancel_open_orders(algo_id)
        if sale is None:
            return
        with self._lock:  # its intent row may have gone with a failed COMMIT (a full disk)
            recorded = self.system.get_order(sale.client_order_id) is not None
        if not recorded:
            why = (f"{sale.qty} {sale.ticker} not sold: the sale could not be recorded before "
                   "it was sent (a full disk?); sell again once the disk has room")
            self._note_problem(algo_id, why)
            raise EngineError(why)
        try:
            update = self.broker.submit_order(sale)
        except BrokerError as e:
            with self._lock:
                self.system.update_order(sale.client_order_id,
                                         status="rejected" if not e.retryable else "intent",
                                         reason=str(e))
            self._note_problem(algo_id, f"could not sell {sale.ticker}: {e}")
            raise EngineError(f"could not sell {sale.ticker}: {e}") from None
        self._record_update(update)
        if update.status == "rejected":
            why = f"the broker refused to sell {sale.qty} {sale.ticker}: {update.reason}"
            self._note_problem(algo_id, why)
            raise EngineError(why)

    def _note_problem(self, algo_id: int, why: str) -> None:
        with self._lock:
            a = self._algos.get(algo_id)
            if a is not None:
                a.error = why
                DeferredWrites.of(self.system).save(
                    [["error", algo_id, why]], f"the problem of algorithm {algo_id}")
        logger.error("algorithm %d: %s", algo_id, why)
        self._emit("on_algorithms_changed")

    def _cancel_open_orders(self, algo_id: int) -> None:
        """A stopped algorithm places nothing more: cancel what it still has working. Orders
        being sent right now are cancelled by their sender once the broker has them."""
        with self._lock:
            rows = [r for r in self.system.orders_for(algo_id)
                    if r["parent"] is None and r["status"] not in TERMINAL_STATUSES
                    and r["status"] not in ("intent", "filled")]
            parents = {r["parent"] for r in self.system.orders_for(algo_id)
                       if r["parent"] is not None and r["status"] not in TERMINAL_STATUSES}
        coids = [r["client_order_id"] for r in rows] + sorted(p for p in parents if p)
        for coid in coids:
            self._cancel(coid)

    def _cancel(self, coid: str, unconfirmed: bool = False) -> None:
        """Cancel ``coid`` at the broker. An intent is skipped (never sent) unless
        ``unconfirmed``: its send failed in a way that may have placed it (the broker
        looks it up first and cancels only what it has)."""
        with self._lock:
            row = self.system.get_order(coid)
            if row is None or row["status"] in TERMINAL_STATUSES or (
                    row["status"] == "intent" and not unconfirmed):
                return
        try:
            self.broker.cancel_order(coid)
            logger.info("canceled open order %s of a stopped algorithm", coid)
        except BrokerError as e:
            logger.warning("cannot cancel order %s: %s", coid, e)

    def _wait_sales(self, jobs: list[Future[None]]) -> list[str]:
        done, _ = wait_futures(jobs, timeout=LIQUIDATION_WAIT)
        out = []
        for f in done:
            e = f.exception()
            if e is not None:
                out.append(str(e))
        if len(done) < len(jobs):
            logger.warning("%d stops still waiting for the broker (cancels, sales); they "
                           "continue in the background", len(jobs) - len(done))
        return out

    def stop_algorithm(self, algo_id: int, liquidate: bool = False,
                       reason: str | None = None) -> None:
        """Stop running ``algo_id``; with ``liquidate`` sell its whole position at market.

        From the moment this returns no order of the algorithm leaves the machine (one being
        sent at that very moment is cancelled as soon as the broker has it)."""
        with self._lock, self.system.brief_lock_waits(PANIC_LOCK_WAIT_MS):
            a = self._get(algo_id)
            job = self._stop_locked(a, reason, liquidate)
        self._unsubscribe(a)
        errors = self._wait_sales([job])
        if errors and liquidate:
            self._emit("on_algorithms_changed")
            raise EngineError("; ".join(errors))
        logger.info("stopped algorithm %d (%s)%s", algo_id, a.name,
                    " and sold its position" if liquidate else "")
        self._emit("on_algorithms_changed")

    def stop_all(self, liquidate: bool = False, reason: str | None = None) -> None:
        """The panic button: stop every running algorithm (and sell, with ``liquidate``).

        One short step under the lock marks them all stopped; cancels and sales go to the
        broker afterwards, off the lock."""
        t0 = time.perf_counter()
        jobs: list[Future[None]] = []
        failures: list[str] = []
        with self._lock:
            targets = [a for a in self._algos.values()
                       if a.status == "running" or (liquidate and a.ledger.position > 0)]
            began = False

            def stop_each() -> None:
                for a in targets:
                    try:
                        jobs.append(self._stop_locked(a, reason, liquidate))
                    except EngineError as e:
                        failures.append(str(e))

            try:
                # Another process's write lock is waited out for a moment only: the rows
                # have a place to wait (DeferredWrites), the owner's tap has not. With the
                # usual 5 s busy timeout, BEGIN and then the first held-back row each waited
                # it out under the engine lock: 10 s before "all stopped".
                with self.system.brief_lock_waits(PANIC_LOCK_WAIT_MS), self.system.atomic():
                    began = True
                    stop_each()
            except sqlite3.OperationalError as e:
                if classify(e) not in ("locked", "full"):
                    raise
                if not began:  # no transaction (another process holds the write lock): stop
                    with self.system.brief_lock_waits(PANIC_LOCK_WAIT_MS):
                        stop_each()  # them all anyway; each stop's row waits (DeferredWrites)
                else:  # the COMMIT failed (a full disk): all stopped, their rows come later
                    writes = DeferredWrites.of(self.system)
                    for a in targets:
                        writes.save(_stop_row(a.id, reason), f"the stop of algorithm {a.id}")
        for a in targets:
            self._unsubscribe(a)
        logger.warning("stop all%s: %d algorithms stopped in %.1f ms%s",
                       " and sell" if liquidate else "", len(targets),
                       (time.perf_counter() - t0) * 1000, f" ({reason})" if reason else "")
        sales = self._wait_sales(jobs)
        if liquidate:
            failures += sales
        self._emit("on_stop_all", len(targets), liquidate, reason)  # notifications
        self._emit("on_algorithms_changed")
        if failures:
            raise EngineError("; ".join(failures))

    # --- resume, delete ------------------------------------------------------------------
    def resume_algorithm(self, algo_id: int) -> None:
        """Run a stopped algorithm again, or lift a pause (accepting the position difference
        seen for its ticker until it changes again).

        While another process holds the DB's write lock (or the disk is full) the resume
        takes effect at once and its row is saved once the DB takes writes (journaled
        meanwhile, ``DeferredWrites``), in order after any stop still waiting."""
        writes = DeferredWrites.of(self.system)
        with self._lock:
            a = self._get(algo_id)
            if a.status == "running":
                if a.paused:
                    self._acknowledge_difference(a.ticker)
                    a.paused, a.error = None, None
                    writes.save([["error", a.id, None]], f"the resume of algorithm {a.id}")
                    if not writes.pending:  # else the next tick writes them
                        self._persist_holds()
                    self._snapshot_later(a.id)
                    logger.info("algorithm %d (%s) resumed from its pause", a.id, a.name)
                    self._emit("on_algorithms_changed")
                return
            a.status, a.error, a.busy, a.paused = "running", None, None, None
            a.cooldown_until, a.rejections = None, 0
            writes.save([["status", algo_id, "running", None], ["error", algo_id, None]],
                        f"the resume of algorithm {algo_id}")
            price = self.market.latest_price(a.ticker)
            self.guards.reset(a.id, a.ledger.value(price))
            if not writes.pending:  # the new baselines too, before the next tick writes them
                self._persist_holds()
            self._snapshot_later(a.id)
        self._refresh_plugins()
        self._instantiate_soon(a)
        if a.status == "running" and self.feed is not None:
            try:
                self.feed.prepare(a.ticker)
            except Exception as e:
                logger.warning("cannot prepare history for %s: %s", a.ticker, e)
            self._subscribe(a)
        self._emit("on_algorithms_changed")

    def delete_algorithm(self, algo_id: int) -> None:
        """Stop (keeping the position) and hide; its orders and transactions stay in the DB.
        Under a foreign lock or a full disk it is hidden at once and its row saved later
        (journaled meanwhile, ``DeferredWrites``)."""
        self.stop_algorithm(algo_id)
        with self._lock:
            DeferredWrites.of(self.system).save([["status", algo_id, "deleted", None]],
                                                f"the deletion of algorithm {algo_id}")
            self._algos.pop(algo_id, None)
        self._emit("on_algorithms_changed")
