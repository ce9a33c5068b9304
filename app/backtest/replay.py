"""The event-driven backtest: the plugin's own ``run()``, minute by minute, unchanged.

Every regular-session minute t from the first replayed bar to the last (bar or not, as the
live scheduler ticks):
1. the simulated now is t: ``get_data_for_algorithm(..., before_timestamp=t)`` sees bars
   strictly before t, whatever the plugin asks for (``BacktestProvider``);
2. ``run(t, algo_id)`` is called under a time limit (``Watchdog``);
3. the answer goes through the engine's own checks (``app.engine.decisions``: shape, share
   count, sell beyond the position, buy beyond the cash at the last close);
4. an accepted order fills at the OPEN of bar t (the next bar after the last one the plugin
   saw; the last close if t has no bar) plus slippage against the trade and a commission per
   share, as the simulated broker's ``next_open`` rule (the shared fill model,
   ``app.broker.fill_model``). A buy the engine accepted fills even when the fill price makes
   it overdraw the algorithm's cash by the move, as live and in the demo, where the account
   pays (the largest overdraft is reported); ``strict_cash`` refuses it instead. The fill is
   applied to the engine's ``Ledger`` and becomes visible to ``get_transactions`` from the
   next minute.

Live trading does the same per tick but runs the plugin on a worker thread, writes orders and
transactions to SQLite and sends them to a broker; the backtest keeps that state in memory,
which is what makes a few hundred thousand minutes a second possible. ``exact.py`` runs the
real ``Engine.run_tick`` instead, and the tests hold the two to the same fills.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from algorithm._api import RunningContext, set_context
from app.backtest.bars import Bars, tick_minutes, tick_schedule
from app.backtest.errors import BacktestError
from app.backtest.fills import FILL_RULES, fill_price, refusal
from app.backtest.provider import BacktestProvider
from app.backtest.result import RunResult, result_from_fills
from app.backtest.watchdog import PluginTimeout, Watchdog
from app.engine.decisions import (
    Decision,
    DecisionRefused,
    check_against_ledger,
    parse_decision,
)
from app.engine.ledger import Ledger
from app.engine.plugins import PluginInfo, make_class
from db import use_thread_provider
from db.calendar import nyse
from db.timeutil import iso_z

logger = logging.getLogger(__name__)

ALGO_ID = 1
MAX_PROBLEMS = 50
MAX_TIMEOUTS_IN_A_ROW = 5
_HOLD = ("hold", 0)
PROGRESS_EVERY = 4096
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Costs:
    """How an accepted decision fills (the shared fill model's inputs)."""

    slippage_bps: float = 0.0
    commission_per_share: float = 0.0
    fill: str = "open"
    strict_cash: bool = False


def run_event(info: PluginInfo, params: dict[str, Any], bars: Bars, first: int,
              capital: float, *, slippage_bps: float = 0.0, commission_per_share: float = 0.0,
              fill: str = "open", timeout_s: float = 2.0, progress: Progress | None = None,
              other: Callable[[str], Bars | None] | None = None,
              strict_cash: bool = False, beacon: Any = None,
              on_fill: Callable[[dict[str, Any]], None] | None = None,
              max_timeouts: int = MAX_TIMEOUTS_IN_A_ROW) -> RunResult:
    """Replay bars[first:] through the plugin; bars before ``first`` are history only.

    ``beacon`` (an object with ``.value``, e.g. a shared ``RawValue``) gets the minute of each
    call, for a parent process watching this one; ``on_fill`` sees each fill as it happens.
    The run stops early, with the reason in ``stopped`` and the problems, when the plugin
    calls ``sys.exit`` or overruns the time limit ``max_timeouts`` calls in a row."""
    try:
        cls = make_class(info, params)
    except ValueError as e:
        raise BacktestError(str(e)) from None
    if fill not in FILL_RULES:
        raise BacktestError(f"unknown fill rule {fill!r} (use {' or '.join(FILL_RULES)})")
    if not 0 <= first < len(bars):
        raise BacktestError("no bars to replay in the chosen period")
    loop = EventLoop(info.name, bars, first, capital,
                     Costs(slippage_bps, commission_per_share, fill, strict_cash),
                     BacktestProvider(bars, other), timeout_s=timeout_s,
                     max_timeouts=max_timeouts, beacon=beacon, on_fill=on_fill)
    started = time.perf_counter()
    # This thread's own provider: a backtest run from the app never changes what the live
    # engine's threads read.
    with thread_provider(loop.provider), Watchdog(timeout_s) as dog:
        loop.start(cls)
        try:
            loop.run(dog, progress)
        finally:
            set_context(None)
    return loop.result(params, time.perf_counter() - started)


class EventLoop:
    """One event run's state: the schedule, the ledger, the fills and what went wrong.

    ``run`` walks the minutes a chunk at a time (``_chunk``: the per-minute loop, kept to
    locals because it runs a few hundred thousand times a second); a decision other than
    hold goes to ``_decided`` (checks and the fill price), a fill to ``_fill`` and a failed
    call to ``_failed``."""

    def __init__(self, name: str, bars: Bars, first: int, capital: float, costs: Costs,
                 provider: BacktestProvider, *, timeout_s: float, max_timeouts: int,
                 beacon: Any, on_fill: Callable[[dict[str, Any]], None] | None) -> None:
        self.name, self.bars, self.first, self.capital = name, bars, first, float(capital)
        self.costs, self.provider = costs, provider
        self.timeout_s, self.max_timeouts = timeout_s, max_timeouts
        self.beacon, self.on_fill = beacon, on_fill
        self.minutes, self.bar_index, self.bar_here = tick_schedule(
            bars, tick_minutes(bars, first, nyse()))
        self.ledger = Ledger(self.capital)
        self.opens: list[float] = bars.o.tolist()
        self.closes: list[float] = provider.main.close
        self.fills: list[dict[str, Any]] = []
        self.problems: list[dict[str, Any]] = []
        self.counts = {"buy": 0, "sell": 0, "hold": 0}
        self.refused = self.errors = self.timeouts_in_a_row = 0
        self.stopped: str | None = None
        self.last_t, self.last_i = self.minutes[0], self.bar_index[0]
        self.ctx = self._context(None, None)
        self.algo: Any = None

    # --- set-up ----------------------------------------------------------------------------
    def start(self, cls: type) -> None:
        """Create the plugin's instance at the first minute (it may read bars already)."""
        t0 = self.minutes[0]
        now = datetime.fromtimestamp(t0, UTC)
        self.provider.advance(self.bar_index[0], now, t0)
        try:
            self.algo = cls(self.bars.ticker, self.capital)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a plugin may raise anything
            raise BacktestError(f"plugin {self.name!r} failed to start: "
                                f"{type(e).__name__}: {e}") from None
        self.ctx = self._context(None, now)
        set_context(self.ctx)

    def _context(self, last: float | None, now: datetime | None) -> RunningContext:
        led = self.ledger
        return RunningContext(ALGO_ID, self.bars.ticker, self.capital, led.cash, led.position,
                              led.avg_cost, last, now)

    # --- the minutes -----------------------------------------------------------------------
    def run(self, dog: Watchdog, progress: Progress | None) -> None:
        total = len(self.minutes)
        for lo in range(0, total, PROGRESS_EVERY):
            if progress is not None:
                progress(lo, total)
            hi = min(total, lo + PROGRESS_EVERY)
            if not self._chunk(dog, self.minutes[lo:hi], self.bar_index[lo:hi],
                               self.bar_here[lo:hi]):
                return
        if progress is not None:
            progress(total, total)

    def _chunk(self, dog: Watchdog, minutes: list[int], index: list[int],
               here: list[bool]) -> bool:
        """Call the plugin at each minute; False when the run was stopped."""
        advance, closes, beacon = self.provider.advance, self.closes, self.beacon
        run, limit, perf = self.algo.run, self.timeout_s, time.perf_counter
        ctx = self.ctx
        holds = 0
        try:
            for t, i, h in zip(minutes, index, here, strict=True):
                now = datetime.fromtimestamp(t, UTC)
                advance(i, now, t)
                last = closes[i - 1] if i else None
                ctx.current_time, ctx.last_price = now, last
                if beacon is not None:
                    beacon.value = t
                try:
                    dog.started = t0 = perf()
                    raw = run(now, ALGO_ID)
                    dog.started = 0.0
                    if perf() - t0 > limit:
                        raise PluginTimeout(f"run() took longer than {limit:g} s")
                    if self.timeouts_in_a_row:  # this call answered in time
                        self.timeouts_in_a_row = 0
                    if raw.__class__ is tuple and raw == _HOLD:  # as parse_decision would
                        holds += 1
                        continue
                except (Exception, SystemExit) as e:  # noqa: BLE001 - the plugin's own error
                    dog.started = 0.0
                    if self._failed(t, i, e):
                        return False
                    continue
                if self._decided(t, i, h, raw, last):
                    ctx = self.ctx
        finally:
            self.counts["hold"] += holds
        return True

    def _failed(self, t: int, i: int, e: BaseException) -> bool:
        """Count a call that raised or overran; True when the run must stop here."""
        self.errors += 1
        self.last_t, self.last_i = t, i
        if isinstance(e, SystemExit):
            self.stopped = (f"stopped: run() called sys.exit({e.code!r}) at {iso_z(t)}; "
                            "the run ended there")
            return True
        if not isinstance(e, PluginTimeout):
            self._problem(t, "error", f"run() raised {type(e).__name__}: {str(e)[:200]}")
            return False
        self._problem(t, "error", str(e))
        self.timeouts_in_a_row += 1
        if self.max_timeouts and self.timeouts_in_a_row >= self.max_timeouts:
            self.stopped = (f"stopped early: run() overran the {self.timeout_s:g} s time limit "
                            f"{self.timeouts_in_a_row} times in a row (last at {iso_z(t)})")
            return True
        return False

    def _decided(self, t: int, i: int, here: bool, raw: Any, last: float | None) -> bool:
        """Check a decision as the engine would and fill it; True when it filled."""
        led, costs = self.ledger, self.costs
        try:
            d = parse_decision(raw)
            if d.action == "hold":
                self.counts["hold"] += 1
                return False
            check_against_ledger(d, led.cash, led.position, last)
            # No bar at this minute: the broker's next_open rule falls back to the last close.
            price = fill_price(d.action, self.opens[i] if costs.fill == "open" and here
                               else last, costs.slippage_bps)
            commission = d.shares * costs.commission_per_share
            if costs.strict_cash:
                why = refusal(d.action, d.shares, price, commission, led.cash, led.position)
                if why:
                    raise DecisionRefused(f"rejected by the broker: {why}")
        except DecisionRefused as e:
            self.refused += 1
            self._problem(t, "refused", str(e))
            return False
        except Exception as e:  # noqa: BLE001 - an answer that breaks comparison or parsing
            self.errors += 1
            self._problem(t, "error", f"run() returned an answer that could not be read: "
                          f"{type(e).__name__}: {str(e)[:200]}")
            return False
        self._fill(t, i, d, price, commission, last)
        return True

    def _fill(self, t: int, i: int, d: Decision, price: float, commission: float,
              last: float | None) -> None:
        self.counts[d.action] += 1
        tx = {"id": len(self.fills) + 1, "algo_id": ALGO_ID, "ticker": self.bars.ticker,
              "type": d.action, "shares": d.shares, "price": price, "commission": commission,
              "timestamp": iso_z(t)}
        self.ledger.apply(tx)
        self.provider.record(ALGO_ID, tx)
        self.fills.append({"i": i, "ts": t, "type": d.action, "shares": d.shares,
                           "price": price, "commission": commission,
                           "cash": self.ledger.cash, "position": self.ledger.position})
        if self.on_fill is not None:
            self.on_fill(self.fills[-1])
        # The fast-path API (algorithm.position()/cash()) reads the new ledger from now on.
        self.ctx = self._context(last, datetime.fromtimestamp(t, UTC))
        set_context(self.ctx)

    def _problem(self, t: int, kind: str, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append({"timestamp": iso_z(t), "kind": kind, "reason": reason})
        if len(self.problems) <= 3:
            logger.info("%s %s at %s: %s", self.name, kind, iso_z(t), reason)

    # --- the end ---------------------------------------------------------------------------
    def _warnings(self) -> list[dict[str, Any]]:
        """What the plugin did to its data, said at the top of the problems."""
        at = iso_z(self.minutes[0])
        out: list[dict[str, Any]] = []
        prov = self.provider
        for ticker in sorted(prov.missing):
            out.insert(0, {"timestamp": at, "kind": "warning",
                           "reason": f"the plugin asked for {ticker} bars, which this "
                                     "backtest does not have (it got none)"})
        if prov.refused_writes:
            out.insert(0, {"timestamp": at, "kind": "warning",
                           "reason": f"the plugin tried to store bars {prov.refused_writes} "
                                     "times; a backtest's history is fixed, so they were "
                                     "ignored"})
        for what in prov.tampered():
            what = what if what == "transactions" else f"{what} bars"
            out.insert(0, {"timestamp": at, "kind": "warning",
                           "reason": f"the plugin modified the {what} it was given; live "
                                     "trading hands out fresh copies, so results may differ"})
            self.errors += 1
        return out

    def result(self, params: dict[str, Any], elapsed: float) -> RunResult:
        problems = self._warnings() + self.problems
        end = n = len(self.bars)
        if self.stopped:  # the report covers what was run: up to the bar of the last call
            problems.append({"timestamp": iso_z(self.last_t), "kind": "stopped",
                             "reason": self.stopped})
            end = max(self.first + 1, min(n, self.last_i + 1))
        sub = self.bars.slice(self.first, end)
        result = result_from_fills(
            plugin=self.name, ticker=self.bars.ticker, ts=sub.ts, close=sub.c,
            first_index=self.first, params=params, capital=self.capital, path="event",
            fills=self.fills, decisions=self.counts, refused=self.refused, errors=self.errors,
            problems=problems, elapsed_s=elapsed)
        result.stopped = self.stopped
        return result


@contextmanager
def thread_provider(provider: BacktestProvider) -> Iterator[None]:
    previous = use_thread_provider(provider)
    try:
        yield
    finally:
        use_thread_provider(previous)
