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
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from algorithm._api import AlgoContext, set_context
from app.broker.base import BrokerError, OrderUpdate
from app.engine.decisions import DecisionRefused, check_against_ledger, parse_decision
from app.engine.model import GUARDS_KEY, LAST_TICK_KEY, AlgoState, TickResult
from app.engine.orders import SUBMIT_ATTEMPTS, PlannedOrder, Wanted
from app.engine.sandbox import Call
from app.timeutil import floor_minute, iso_z, require_aware

logger = logging.getLogger(__name__)

# Plugin calls not started this long after the tick began are skipped: the minute is over.
TICK_BUDGET_SECONDS = 40.0
WATCH_EVERY = timedelta(minutes=5)
NOT_SENT_STOPPED = "not sent: its algorithm was stopped before the order left"


class TickPlanner:
    _lock: Any
    _algos: dict[int, AlgoState]

    def run_tick(self, minute: datetime) -> TickResult:
        """Run every running algorithm for ``minute`` (a minute boundary) and place orders."""
        t0 = time.perf_counter()
        minute = floor_minute(require_aware(minute))
        decisions: list[dict] = []
        errors: dict[int, str] = {}
        fills: list[dict] = []
        with self._tick_lock:
            if self._last_minute is not None and minute <= self._last_minute:
                logger.info("tick %s skipped: already ran up to %s", iso_z(minute),
                            iso_z(self._last_minute))
                return TickResult(minute, [], [], {}, 0.0)
            if self.before_tick is not None:
                try:
                    self.before_tick(minute)
                except Exception:
                    logger.exception("before-tick hook failed")
            with self._lock:
                self._collect = fills
            try:
                self._tick(minute, decisions, errors)
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

    # --- the tick ------------------------------------------------------------------------
    def _tick(self, minute: datetime, decisions: list[dict], errors: dict[int, str]) -> None:
        if self.mode != "backtest":  # splits/dividends: the day's first tick (corporate.py)
            self._corporate_before_tick(minute)
        if not self._session_open(minute):
            with self._lock, self.system.atomic():
                self.system.set_setting(LAST_TICK_KEY, iso_z(minute))
                self._last_minute = minute
            return
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
            prices = {t: self.market.latest_price(t, before_ts=ts)
                      for t in {a.ticker for a in self._algos.values()}}
            self._apply_guards(minute, prices, stopped)
            running = [a for a in self._algos.values() if a.status == "running"]
            calls: list[Call] = []
            for a in running:
                skip = None
                if a.paused:
                    skip = a.paused
                elif a.instance is None:
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
        for a in stopped:
            self._unsubscribe(a)
        if stopped:
            self._emit("on_algorithms_changed")

        # 3. plugins, no lock
        self._pool.run_all(calls, self.plugin_timeout, budget=TICK_BUDGET_SECONDS)

        # 4. decide and write the intents
        with self._lock:
            wanted = self._decide(calls, minute, prices, working, decisions, errors, stopped)
            planned, crossed, refused = self.orders.write_intents(
                wanted, minute, prices, mark=(LAST_TICK_KEY, iso_z(minute)),
                extra_marks=[(GUARDS_KEY, self.guards.dump())])
            self._last_minute = minute
            self._apply_txs(crossed)
            errors.update(refused)

        # 5. send, each order checked against the halt flags right before it leaves
        unreachable = False
        for order in planned:
            err = self._send(order, attempts=1 if unreachable else SUBMIT_ATTEMPTS)
            if err:
                # Once the broker has failed one order through all its retries, try each of
                # the others once: a broker outage must not hold the tick for minutes.
                unreachable = unreachable or err.startswith("order not confirmed")
                for algo_id in order.algo_ids:
                    errors[algo_id] = err

        # 6. problems onto the cards (a stopped algorithm keeps its stop reason)
        with self._lock:
            for algo_id, why in errors.items():
                a = self._algos.get(algo_id)
                if a is None or a.status != "running" or a.paused:
                    continue
                a.error = why
                self.system.set_algorithm_error(algo_id, why)
                logger.warning("algorithm %d (%s) at %s: %s", algo_id, a.name,
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
                working: dict[int, tuple[int, int]], decisions: list[dict],
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
            why = None
            if not a.trading:
                why = "stopped while its plugin ran; decision ignored"
            elif call.skipped:
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
                    if d.action != "hold":
                        value = d.shares * (price or 0.0)
                        if a.cooldown_until is not None and minute < a.cooldown_until:
                            raise DecisionRefused(
                                f"cool-down after a broker refusal: no orders before "
                                f"{iso_z(a.cooldown_until)}")
                        stop_why = self.guards.check_order(a.id, value)
                        if stop_why:
                            self._stop_locked(a, stop_why, False)
                            stopped.append(a)
                            raise DecisionRefused(stop_why)
                        if budget is not None and spent + value > budget + 1e-6:
                            raise DecisionRefused(
                                f"account guard: this minute's orders would exceed "
                                f"${budget:,.2f}; order refused")
                        spent += value
                        self.guards.count_order(a.id)
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
        return wanted

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
        return None

    def _send(self, order: PlannedOrder, attempts: int) -> str | None:
        coid = order.client_order_id
        with self._lock:
            why = self._halt_reason(order)
            if why:
                self.orders.apply_update(OrderUpdate(coid, "canceled", order.ticker, order.side,
                                                     order.qty, reason=why))
                logger.warning("order %s %s", coid, why)
                return why
            self._inflight[coid] = order.algo_ids
        try:
            txs, err = self.orders.send(order, attempts=attempts)
        finally:
            with self._lock:
                self._inflight.pop(coid, None)
        with self._lock:
            self._apply_txs(txs)
            late = self._halt_reason(order) is not None
        if late:
            # Stopped while the order was on the wire: take it back at once.
            self.io.submit(self._cancel, coid)
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


__all__ = ["TickPlanner", "TICK_BUDGET_SECONDS", "BrokerError"]
