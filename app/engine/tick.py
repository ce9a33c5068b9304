"""The tick planner: one minute of every running algorithm.

Steps, and which hold the core's lock:

1. broker reads, no lock: the broker's clock (once a session, and every 5 minutes while it
   says closed), the open orders of earlier minutes, the positions every 5 minutes;
2. plan, lock: prices, risk guards (stops), each algorithm's context;
3. plugins, no lock (each with its time limit);
4. decide, lock: check each decision, cool-downs and order guards, then write every intent
   and "this minute has run" in one transaction (a minute is either not started or done);
5. send, no lock: each order is checked against the halt flags right before it leaves (a
   stopped or paused algorithm, a closed market); an order whose algorithm was stopped while
   it was on the wire is cancelled as soon as the broker has it;
6. record, lock: problems onto the cards.

Storage faults (storage.py): a write lock held by another process past the busy timeout is
retried within the tick's budget; a tick whose decisions cannot be recorded sends nothing and
says so once (not a traceback a minute); a full disk (checked before each tick every few
minutes, and as soon as a write fails for lack of space) pauses trading with one clear error,
``storage_problem``, until the space is back. An order found stale when it is about to leave
(its minute more than ``stale_after`` of market time ago) is cancelled, never sent.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from algorithm._api import AlgoContext, set_context
from app.broker.base import BrokerError, OrderUpdate
from app.engine.core import EngineCore
from app.engine.decisions import DecisionRefused, check_against_ledger, parse_decision
from app.engine.model import (
    GUARDS_KEY,
    LAST_TICK_KEY,
    AlgoState,
    DecisionRow,
    TickResult,
    decision_row,
)
from app.engine.orders import PlannedOrder, Wanted
from app.engine.sandbox import MAX_DEATHS_IN_A_ROW, Call
from app.engine.storage import DiskWatch, OnceNotice, classify, retry_locked
from db.system import Transaction
from db.timeutil import floor_minute, iso_z, require_aware

logger = logging.getLogger(__name__)

# Plugin calls not started this long after the tick began are skipped: the minute is over.
TICK_BUDGET_SECONDS = 40.0
WATCH_EVERY = timedelta(minutes=5)
NOT_SENT_STOPPED = "not sent: its algorithm was stopped before the order left"
STALE_AFTER = timedelta(seconds=30)  # of market (clock) time, from the order's minute
# A plugin object still being created (a slow worker cold start, queued behind a hung plugin):
# the minute is skipped, and it is not the algorithm's error (the card would keep it).
STARTING = "waiting: its plugin is still starting"


def _skip_reason(a: AlgoState, note: str | None) -> str | None:
    """Why ``a`` does not run this minute (paused, the feed holds it, no plugin instance, its
    previous run still going), or None."""
    if a.paused:
        return a.paused
    if note and note.startswith("holding"):
        return note
    if a.instance is None:
        if a.starting is not None and a.error is None:
            return STARTING
        return a.error or "plugin not loaded"
    if a.busy is not None and not a.busy.done.is_set():
        return "skipped: its previous run() has not returned yet"
    return None


def _plugin_missing(error: str | None) -> bool:
    """An algorithm left in error because its plugin file was missing or broken (retried
    automatically when the plugin folder changes)."""
    return error is not None and error.startswith("plugin '") and (
        error.endswith("' not found") or "' is broken: " in error)


class TickPlanner(EngineCore):
    # Set by the runner from the config; None disables (backtests, unit tests' defaults).
    stale_after: timedelta | None = STALE_AFTER
    disk: DiskWatch | None = None
    storage_problem: str | None = None  # why trading is paused/failing for storage, or None
    _storage_notice: OnceNotice | None = None
    _plugin_sig: Any = None

    @property
    def status_problem(self) -> str | None:
        """The engine-wide problem to show in the header (storage, market closure), or None."""
        return self.storage_problem or self.market_block

    def run_tick(self, minute: datetime) -> TickResult:
        """Run every running algorithm for ``minute`` (a minute boundary) and place orders."""
        t0 = time.perf_counter()
        minute = floor_minute(require_aware(minute))
        decisions: list[DecisionRow] = []
        errors: dict[int, str] = {}
        fills: list[Transaction] = []
        with self._tick_lock:
            if self._last_minute is not None and minute <= self._last_minute:
                logger.info("tick %s skipped: already ran up to %s", iso_z(minute),
                            iso_z(self._last_minute))
                return TickResult(minute, [], [], {}, 0.0)
            if self.before_tick is not None:
                try:
                    self.before_tick(minute)
                except Exception as e:
                    if classify(e) is None:
                        logger.exception("before-tick hook failed")
                    else:  # storing the minute's bars failed: said once, not each minute
                        self._notice().problem(f"bars-{classify(e)}",
                                               f"cannot store this minute's bars: {e}")
            if self._disk_paused(minute, decisions, errors):
                self._emit("on_tick", TickResult(minute, decisions, [], errors, 0.0))
                return TickResult(minute, decisions, [], errors,
                                  (time.perf_counter() - t0) * 1000.0)
            with self._lock:
                self._collect = fills
            try:
                self._tick(minute, decisions, errors, time.monotonic() + TICK_BUDGET_SECONDS)
            except (sqlite3.Error, OSError) as e:
                self._storage_failed(minute, e, decisions, errors)
            else:
                self._storage_ok()
            finally:
                with self._lock:
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

    # --- 1. the broker's view, before planning -------------------------------------------
    def _session_open(self, minute: datetime) -> bool:
        """False when the broker says the market is closed although the calendar has a
        session (an unscheduled closure): no order goes out. Asked at a session's first
        tick and every 5 minutes while closed."""
        day = minute.date().isoformat()
        if self._clock_day == day and self.market_block is None:
            return True
        if self.market_block is not None and self._clock_checked is not None \
                and minute - self._clock_checked < WATCH_EVERY and self._clock_day == day:
            return False
        try:
            clk = self.broker.get_clock()
        except Exception as e:
            logger.warning("cannot read the broker's clock: %s; trading on the calendar", e)
            return True
        self._clock_checked, self._clock_day = minute, day
        if not clk.is_open and self.calendar.is_open(clk.timestamp):
            if self.market_block is None:
                logger.error("the broker says the market is closed at %s although the "
                             "calendar has a session: no orders are sent", iso_z(clk.timestamp))
            self.market_block = (f"the broker says the market is closed "
                                 f"({iso_z(clk.timestamp)}, an unscheduled closure): no orders")
            return False
        if self.market_block is not None:
            logger.warning("the broker says the market is open again")
        self.market_block = None
        return True

    # --- storage faults ------------------------------------------------------------------
    def _notice(self) -> OnceNotice:
        if self._storage_notice is None:
            self._storage_notice = OnceNotice(logger)
        return self._storage_notice

    def _disk_paused(self, minute: datetime, decisions: list[DecisionRow],
                     errors: dict[int, str]) -> bool:
        """True (and the tick skipped, nothing run or sent) while the disk is full."""
        if self.disk is None:
            return False
        why = self.disk.check()
        if why is None:
            if self.storage_problem is not None and self.storage_problem.startswith("the disk"):
                self.storage_problem = None
                self._emit("on_algorithms_changed")
            return False
        self.storage_problem = why
        self._notice().problem("full", why)
        with self._lock:
            self._last_minute = minute  # in memory: the minute is over, whatever happens
            for a in self._algos.values():
                if a.status == "running":
                    errors[a.id] = "not run: " + why
                    decisions.append(decision_row(a, refused=errors[a.id]))
        return True

    def _storage_failed(self, minute: datetime, e: BaseException, decisions: list[DecisionRow],
                        errors: dict[int, str]) -> None:
        """A DB step of the tick failed: nothing more of it is sent. Said once while it
        lasts; a full disk pauses trading until the space is back."""
        kind = classify(e)
        if kind is None:
            raise e
        if kind == "full" and self.disk is not None:
            why = self.disk.write_failed(e)
        elif kind == "full":
            why = f"the disk is full ({e}): trading is paused; free some space"
        elif kind == "locked":
            why = (f"the database stayed locked by another process for the whole tick ({e}): "
                   "this minute's decisions were not recorded and nothing was sent; close "
                   "the program holding it (a DB browser, a backup tool)")
        else:
            why = f"the database cannot be written ({e}): nothing was sent this minute"
        self.storage_problem = why
        self._notice().problem(kind, f"tick {iso_z(minute)}: {why}")
        with self._lock:
            self._last_minute = max(self._last_minute or minute, minute)
            sent = {d["algo_id"] for d in decisions}
            for a in self._algos.values():
                if a.status == "running":
                    errors.setdefault(a.id, "not recorded, not sent: " + why)
                    if a.id not in sent:
                        decisions.append(decision_row(a, refused=errors[a.id]))
        self._emit("on_algorithms_changed")

    def _storage_ok(self) -> None:
        if self.storage_problem is not None and (
                self.disk is None or self.disk.full is None):
            self.storage_problem = None
            self._notice().clear("storage works again: trading goes on")
            self._emit("on_algorithms_changed")

    # --- plugins that come back ----------------------------------------------------------
    def _plugin_folders_sig(self) -> Any:
        from pathlib import Path

        sig: list[tuple[str, Any]] = []
        for d in getattr(self, "plugin_dirs", []):
            d = Path(d).expanduser()
            try:
                sig.append((str(d), tuple(sorted((p.name, p.stat().st_mtime_ns)
                                                 for p in d.glob("*.py")))))
            except OSError:
                sig.append((str(d), None))
        return tuple(sig)

    def _retry_missing_plugins(self) -> None:
        """Algorithms in error because their plugin was missing or broken start again (in
        this tick) once the plugin folder has changed and the plugin loads."""
        with self._lock:
            waiting = [a for a in self._algos.values()
                       if a.status == "error" and _plugin_missing(a.error)]
        if not waiting:
            return
        sig = self._plugin_folders_sig()
        if sig == self._plugin_sig:
            return
        self._plugin_sig = sig
        self._refresh_plugins()
        for a in waiting:
            info = self._plugins.get(a.plugin)
            if info is None or info.error:
                continue
            with self._lock:
                if a.status != "error":
                    continue
                a.status, a.instance, a.busy = "running", None, None
            why = self._instantiate(a)
            if why is None:
                with self._lock:
                    a.error = None
                    self.system.set_algorithm_status(a.id, "running")
                    self.system.set_algorithm_error(a.id, None)
                logger.warning("algorithm %d (%s): plugin %r is back; it runs again", a.id,
                               a.name, a.plugin)
                if a.ticker and getattr(self, "feed", None) is not None:
                    self._subscribe(a)
        self._emit("on_algorithms_changed")

    # --- the tick ------------------------------------------------------------------------
    def _tick(self, minute: datetime, decisions: list[DecisionRow], errors: dict[int, str],
              deadline: float) -> None:
        if self.mode != "backtest":  # splits/dividends: the day's first tick (corporate.py)
            self._corporate_before_tick(minute)
        if not self._session_open(minute):
            def mark() -> None:
                with self._lock, self.system.atomic():
                    self.system.set_setting(LAST_TICK_KEY, iso_z(minute))
                    self._last_minute = minute
            retry_locked(mark, deadline, what=f"tick {iso_z(minute)}")
            return
        self._retry_missing_plugins()
        _, polled = self.orders.poll_open(minute)
        with self._lock:
            self._apply_txs(polled)
        if self._last_watch is None or minute - self._last_watch >= WATCH_EVERY:
            self.watch_positions(minute)
        working = self.orders.working_by_algo()
        self._adopt_started(self.plugin_timeout + 1.0)

        # 2. plan
        stopped: list[AlgoState] = []
        with self._lock:
            ts = int(minute.timestamp())
            prices = self.market.latest_prices({a.ticker for a in self._algos.values()}, ts)
            self._apply_guards(minute, prices, stopped)
            running = [a for a in self._algos.values() if a.status == "running"]
            calls: list[Call] = []
            feed_seen: dict[str, str | None] = {}
            for a in running:
                # The feed's view (intake.py): refused, halted or no bar for 5+ min holds;
                # no bar for 2-4 min only goes on the card.
                note = self._feed_hold(a.ticker, minute, feed_seen)
                skip = _skip_reason(a, note)
                if note and not skip:
                    errors[a.id] = note
                if skip:
                    if skip != STARTING:
                        errors[a.id] = skip
                    decisions.append(decision_row(a, refused=skip))
                    continue
                led = a.ledger
                ctx = AlgoContext(a.id, a.ticker, a.initial_capital, led.cash, led.position,
                                  led.avg_cost, prices[a.ticker], minute)
                a.busy = Call(a.id, partial(self._invoke, a.instance, ctx, minute, a.id))
                calls.append(a.busy)
        for a in stopped:
            self._unsubscribe(a)
        if stopped:
            self._emit("on_algorithms_changed")

        # 3. plugins, no lock
        self._pool.run_all(calls, self.plugin_timeout, budget=TICK_BUDGET_SECONDS)

        # 4. decide and write the intents (one transaction; tried again while another
        # process holds the write lock, within the tick's budget)
        n_stopped = len(stopped)
        with self._lock:
            wanted = self._decide(calls, minute, prices, working, decisions, errors, stopped)
        for a in stopped[n_stopped:]:  # stopped for their plugin's deaths, or a guard
            self._unsubscribe(a)
        if len(stopped) > n_stopped:
            self._emit("on_algorithms_changed")

        def write() -> tuple[list[PlannedOrder], list[Transaction], dict[int, str]]:
            with self._lock:
                return self.orders.write_intents(
                    wanted, minute, prices, mark=(LAST_TICK_KEY, iso_z(minute)),
                    extra_marks=[(GUARDS_KEY, self.guards.dump())])

        planned, crossed, refused = retry_locked(write, deadline,
                                                 what=f"tick {iso_z(minute)}")
        with self._lock:
            self._last_minute = minute
            self._apply_txs(crossed)
            errors.update(refused)

        self._send_planned(planned, minute, errors)
        self._show_problems(errors, minute)

    def _send_planned(self, planned: list[PlannedOrder], minute: datetime,
                      errors: dict[int, str]) -> None:
        """5. send, each order checked against the halt flags right before it leaves."""
        unreachable = False
        for order in planned:
            err = self._send(order, attempts=1 if unreachable else None, minute=minute)
            if err:
                # Once the broker has failed one order through all its retries, try each of
                # the others once: a broker outage must not hold the tick for minutes.
                unreachable = unreachable or (err.startswith("order not confirmed")
                                              and "not tried again" not in err)
                for algo_id in order.algo_ids:
                    errors[algo_id] = err

    def _show_problems(self, errors: dict[int, str], minute: datetime) -> None:
        """6. problems onto the cards (a stopped algorithm keeps its stop reason)."""
        with self._lock:
            for algo_id, why in errors.items():
                shown = self._algos.get(algo_id)
                if shown is None or shown.status != "running" or shown.paused:
                    continue
                shown.error = why
                self.system.set_algorithm_error(algo_id, why)
                logger.warning("algorithm %d (%s) at %s: %s", algo_id, shown.name,
                               iso_z(minute), why)

    def _apply_guards(self, minute: datetime, prices: dict[str, float | None],
                      stopped: list[AlgoState]) -> None:
        """Under the lock: roll the day's baselines, stop what crossed a loss limit."""
        values = {a.id: a.ledger.value(prices.get(a.ticker)) for a in self._algos.values()
                  if a.status == "running" or a.ledger.position}
        self.guards.roll(minute.date().isoformat(), values)
        sell = self.guards.limits.sell_on_stop
        why = self.guards.check_account(values)
        if why:
            self.guards.account_stopped = self.guards.day
            targets = [a for a in self._algos.values() if a.status == "running"]
            for a in targets:
                self._stop_locked(a, why, sell and a.ledger.position > 0)
                stopped.append(a)
            logger.error("%s (%d algorithms)", why, len(targets))
            return
        for a in self._algos.values():
            if a.status != "running":
                continue
            why = self.guards.check_algo(a.id, a.initial_capital, values[a.id])
            if why:
                self._stop_locked(a, why, sell and a.ledger.position > 0)
                stopped.append(a)

    def _decide(self, calls: list[Call], minute: datetime, prices: dict[str, float | None],
                working: dict[int, tuple[int, int]], decisions: list[DecisionRow],
                errors: dict[int, str], stopped: list[AlgoState]) -> list[Wanted]:
        wanted: list[Wanted] = []
        running_capital = sum(a.initial_capital for a in self._algos.values()
                              if a.status == "running")
        budget = self.guards.minute_budget(running_capital)
        spent = 0.0
        for call in calls:
            a = self._algos.get(call.key)
            if a is None:
                continue
            if not call.timed_out:
                a.busy = None  # a hung call keeps the algorithm busy until it returns
            why = self._call_failure(a, call, stopped)
            if why is None:
                try:
                    d = parse_decision(call.result)
                    # Orders still working at the broker have claims on cash and shares.
                    buying, selling = working.get(a.id, (0, 0))
                    price = prices[a.ticker]
                    check_against_ledger(d, a.ledger.cash - buying * (price or 0.0),
                                         a.ledger.position - selling, price)
                    if d.action != "hold":
                        value = d.shares * (price or 0.0)
                        if a.cooldown_until is not None and minute < a.cooldown_until:
                            raise DecisionRefused(
                                f"cool-down after a broker refusal: no orders before "
                                f"{iso_z(a.cooldown_until)}")
                        stop_why = self.guards.check_order(a.id, value, d.action)
                        if stop_why:
                            self._stop_locked(a, stop_why, False)
                            stopped.append(a)
                            raise DecisionRefused(stop_why)
                        if d.action == "buy":  # the budget caps buying; sells always go
                            if budget is not None and spent + value > budget + 1e-6:
                                raise DecisionRefused(
                                    f"account guard: this minute's buys would exceed "
                                    f"${budget:,.2f}; order refused")
                            spent += value
                        self.guards.count_order(a.id)
                except DecisionRefused as e:
                    why = str(e)
                else:
                    decisions.append(decision_row(a, d.action, d.shares))
                    if d.action != "hold":
                        wanted.append(Wanted(a.id, a.ticker, d))
                    continue
            errors[a.id] = why
            decisions.append(decision_row(a, refused=why))
        return wanted

    def _call_failure(self, a: AlgoState, call: Call, stopped: list[AlgoState]) -> str | None:
        """Under the lock: why the plugin call gave no decision to look at (its process kept
        dying: the algorithm stops; stopped meanwhile; skipped; too slow; raised), or None."""
        if call.deaths >= MAX_DEATHS_IN_A_ROW and a.status == "running":
            why = (f"stopped: its plugin process died {call.deaths} times in a row "
                   f"(last: {(call.died or '?').removeprefix('stopped: ')}); fix the "
                   "plugin, then resume the algorithm")
            self._stop_locked(a, why, False)
            stopped.append(a)
            return why
        if not a.trading:
            return "stopped while its plugin ran; decision ignored"
        if call.skipped:
            return "skipped: other plugins used up this minute's time"
        if call.timed_out:
            return f"run() took longer than {self.plugin_timeout:g} s; decision ignored"
        if call.error is not None:
            e = call.error
            return f"run() raised {type(e).__name__}: {str(e)[:200]}" + (
                f" ({call.where})" if call.where else "")
        return None

    def _halt_reason(self, order: PlannedOrder) -> str | None:
        """Under the lock: why ``order`` must not leave the machine now, or None."""
        if self._closed:
            return "not sent: the engine is closing"
        if self.market_block:
            return f"not sent: {self.market_block}"
        for algo_id in order.algo_ids:
            a = self._algos.get(algo_id)
            if a is None or a.status != "running":
                return NOT_SENT_STOPPED
            if a.paused:
                return f"not sent: paused ({a.paused})"
        return self._halted_reason(order.ticker)

    def _stale_reason(self, minute: datetime | None) -> str | None:
        """Why an order of ``minute`` is too old to send now (market/clock time), or None."""
        if minute is None or self.stale_after is None:
            return None
        age = self.clock.now() - minute
        if age <= self.stale_after:
            return None
        return (f"cancelled as stale, not sent: its minute {iso_z(minute)} was "
                f"{age.total_seconds():.0f} s ago when it was about to leave (limit "
                f"{self.stale_after.total_seconds():g} s)")

    def _send(self, order: PlannedOrder, attempts: int | None,
              minute: datetime | None = None) -> str | None:
        """Send ``order`` unless a halt flag says no; the same check runs before each of the
        broker's retries (retry.py), so a stop during a 5xx spell stops the resends too."""
        coid = order.client_order_id

        def still_wanted() -> str | None:
            with self._lock:
                return self._halt_reason(order) or self._stale_reason(minute)

        with self._lock:
            why = self._halt_reason(order) or self._stale_reason(minute)
            if why:
                self.orders.apply_update(OrderUpdate(coid, "canceled", order.ticker, order.side,
                                                     order.qty, reason=why))
                logger.warning("order %s %s", coid, why)
                return why
            self._inflight[coid] = order.algo_ids
        try:
            txs, err = self.orders.send(order, attempts=attempts, check=still_wanted)
        finally:
            with self._lock:
                self._inflight.pop(coid, None)
        with self._lock:
            self._apply_txs(txs)
            late = self._halt_reason(order) is not None
        if late:
            # Stopped while the order was on the wire (or between the broker's retries):
            # take it back at once, also when the send's outcome is unknown.
            self.io.submit(self._cancel, coid, True)
        return err

    def _invoke(self, instance: Any, ctx: AlgoContext, minute: datetime, algo_id: int) -> Any:
        """Runs on a pool thread: the plugin's ``run`` with its data and context set."""
        import db

        db.use_thread_provider(self.provider)
        set_context(ctx)
        try:
            return instance.run(minute, algo_id)
        finally:
            set_context(None)

    # --- rejections ----------------------------------------------------------------------
    def _on_rejected(self, algo_ids: tuple[int, ...], reason: str) -> None:
        """Under the lock (from the order book): a broker refusal puts the algorithm in a
        cool-down; ``max_rejections`` in a row stop it."""
        lim = self.guards.limits
        base = self._last_minute or floor_minute(self.clock.now())
        for algo_id in algo_ids:
            a = self._algos.get(algo_id)
            if a is None or a.status != "running":
                continue
            a.rejections += 1
            if a.rejections >= lim.max_rejections:
                self._stop_locked(a, f"the broker refused {a.rejections} orders in a row "
                                     f"(last: {reason})", False)
                continue
            a.cooldown_until = base + timedelta(minutes=lim.reject_cooldown_minutes)
            a.error = (f"the broker refused the order ({reason}); no orders before "
                       f"{iso_z(a.cooldown_until)}")
            self.system.set_algorithm_error(a.id, a.error)
            logger.warning("algorithm %d (%s): %s", a.id, a.name, a.error)
        self._persist_holds()  # a restart keeps the count and the cool-down


__all__ = ["TickPlanner", "TICK_BUDGET_SECONDS", "BrokerError"]
