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
from datetime import UTC, datetime
from typing import Any

from algorithm._api import AlgoContext, set_context
from app.backtest.bars import Bars, tick_minutes, tick_schedule
from app.backtest.errors import BacktestError
from app.backtest.fills import FILL_RULES, fill_price, refusal
from app.backtest.provider import BacktestProvider
from app.backtest.result import RunResult, result_from_fills
from app.backtest.watchdog import PluginTimeout, Watchdog
from app.engine.decisions import DecisionRefused, check_against_ledger, parse_decision
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
    fill_at_open = fill == "open"
    n = len(bars)
    if not 0 <= first < n:
        raise BacktestError("no bars to replay in the chosen period")
    minutes, bar_index, bar_here = tick_schedule(bars, tick_minutes(bars, first, nyse()))
    provider = BacktestProvider(bars, other)
    ledger = Ledger(float(capital))
    opens = bars.o.tolist()
    closes = provider.main.close
    total = len(minutes)
    fills: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    counts = {"buy": 0, "sell": 0, "hold": 0}
    refused = errors = 0
    timeouts_in_a_row = 0
    stopped: str | None = None

    def problem(t: int, kind: str, reason: str) -> None:
        if len(problems) < MAX_PROBLEMS:
            problems.append({"timestamp": iso_z(t), "kind": kind, "reason": reason})
        if len(problems) <= 3:
            logger.info("%s %s at %s: %s", info.name, kind, iso_z(t), reason)

    started_all = time.perf_counter()
    # This thread's own provider: a backtest run from the app never changes what the live
    # engine's threads read.
    with thread_provider(provider), Watchdog(timeout_s) as dog:
        provider.advance(bar_index[0], datetime.fromtimestamp(minutes[0], UTC), minutes[0])
        try:
            algo = cls(bars.ticker, float(capital))
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a plugin may raise anything
            raise BacktestError(f"plugin {info.name!r} failed to start: "
                                f"{type(e).__name__}: {e}") from None
        run = algo.run
        # The fast-path API (algorithm.position()/cash()) reads this context. It is rebuilt
        # after each fill; the two per-minute fields are written straight into its __dict__
        # (a new frozen dataclass every minute would cost more than the seed functions).
        ctx = _context(ledger, bars.ticker, capital, None, provider._now_dt)
        cd = ctx.__dict__
        set_context(ctx)
        perf = time.perf_counter
        try:
            for lo in range(0, total, PROGRESS_EVERY):
                if progress is not None:
                    progress(lo, total)
                hi = min(total, lo + PROGRESS_EVERY)
                for t, i, here in zip(minutes[lo:hi], bar_index[lo:hi], bar_here[lo:hi],
                                      strict=True):
                    now = datetime.fromtimestamp(t, UTC)
                    # provider.advance(), inlined: this runs once per minute of history.
                    provider._i, provider._now_dt, provider._now_ts = i, now, t
                    last = closes[i - 1] if i else None
                    cd["current_time"] = now
                    cd["last_price"] = last
                    if beacon is not None:
                        beacon.value = t
                    try:
                        dog.started = t0 = perf()
                        raw = run(now, ALGO_ID)
                        dog.started = 0.0
                        if perf() - t0 > timeout_s:
                            raise PluginTimeout(f"run() took longer than {timeout_s:g} s")
                        timeouts_in_a_row = 0
                        if raw.__class__ is tuple and raw == _HOLD:  # as parse_decision would
                            counts["hold"] += 1
                            continue
                        d = parse_decision(raw)
                        if d.action == "hold":
                            counts["hold"] += 1
                            continue
                        check_against_ledger(d, ledger.cash, ledger.position, last)
                        # No bar at this minute: the broker's next_open rule falls back
                        # to the last close.
                        price = fill_price(d.action, opens[i] if fill_at_open and here
                                           else last, slippage_bps)
                        commission = d.shares * commission_per_share
                        if strict_cash:
                            why = refusal(d.action, d.shares, price, commission, ledger.cash,
                                          ledger.position)
                            if why:
                                raise DecisionRefused(f"rejected by the broker: {why}")
                    except DecisionRefused as e:
                        refused += 1
                        problem(t, "refused", str(e))
                        continue
                    except PluginTimeout as e:
                        dog.started = 0.0
                        errors += 1
                        problem(t, "error", str(e))
                        timeouts_in_a_row += 1
                        if max_timeouts and timeouts_in_a_row >= max_timeouts:
                            stopped = (f"stopped early: run() overran the {timeout_s:g} s time "
                                       f"limit {timeouts_in_a_row} times in a row (last at "
                                       f"{iso_z(t)})")
                            break
                        continue
                    except SystemExit as e:
                        dog.started = 0.0
                        errors += 1
                        stopped = (f"stopped: run() called sys.exit({e.code!r}) at {iso_z(t)}; "
                                   "the run ended there")
                        break
                    except Exception as e:  # noqa: BLE001 - the plugin's exception is its error
                        dog.started = 0.0
                        errors += 1
                        problem(t, "error", f"run() raised {type(e).__name__}: {str(e)[:200]}")
                        continue
                    counts[d.action] += 1
                    tx = {"id": len(fills) + 1, "algo_id": ALGO_ID, "ticker": bars.ticker,
                          "type": d.action, "shares": d.shares, "price": price,
                          "commission": commission, "timestamp": iso_z(t)}
                    ledger.apply(tx)
                    provider.record(ALGO_ID, tx)
                    fills.append({"i": i, "ts": t, "type": d.action, "shares": d.shares,
                                  "price": price, "commission": commission,
                                  "cash": ledger.cash, "position": ledger.position})
                    if on_fill is not None:
                        on_fill(fills[-1])
                    ctx = _context(ledger, bars.ticker, capital, last, now)
                    cd = ctx.__dict__
                    set_context(ctx)
                if stopped:
                    break
            if progress is not None:
                progress(total, total)
        finally:
            set_context(None)
    elapsed = time.perf_counter() - started_all
    for ticker in sorted(provider.missing):
        problems.insert(0, {"timestamp": iso_z(minutes[0]), "kind": "warning",
                            "reason": f"the plugin asked for {ticker} bars, which this backtest "
                                      "does not have (it got none)"})
    if provider.refused_writes:
        problems.insert(0, {"timestamp": iso_z(minutes[0]), "kind": "warning",
                            "reason": f"the plugin tried to store bars {provider.refused_writes} "
                                      "times; a backtest's history is fixed, so they were "
                                      "ignored"})
    for what in provider.tampered():
        what = what if what == "transactions" else f"{what} bars"
        problems.insert(0, {"timestamp": iso_z(minutes[0]), "kind": "warning",
                            "reason": f"the plugin modified the {what} it was given; live "
                                      "trading hands out fresh copies, so results may differ"})
        errors += 1
    end = n
    if stopped:  # the report covers what was run: up to the bar of the last call
        problems.append({"timestamp": iso_z(t), "kind": "stopped", "reason": stopped})
        end = max(first + 1, min(n, i + 1))
    sub = bars.slice(first, end)
    result = result_from_fills(
        plugin=info.name, ticker=bars.ticker, ts=sub.ts, close=sub.c, first_index=first,
        params=params, capital=capital, path="event", fills=fills, decisions=counts,
        refused=refused, errors=errors, problems=problems, elapsed_s=elapsed)
    result.stopped = stopped
    return result


@contextmanager
def thread_provider(provider: BacktestProvider) -> Iterator[None]:
    previous = use_thread_provider(provider)
    try:
        yield
    finally:
        use_thread_provider(previous)


def _context(ledger: Ledger, ticker: str, capital: float, last: float | None,
             now: datetime | None) -> AlgoContext:
    return AlgoContext(algo_id=ALGO_ID, ticker=ticker, initial_capital=float(capital),
                       cash=ledger.cash, position=ledger.position, avg_cost=ledger.avg_cost,
                       last_price=last, current_time=now)  # type: ignore[arg-type]
