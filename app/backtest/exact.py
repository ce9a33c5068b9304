"""The exact path: the live engine itself, one ``Engine.run_tick`` per minute of history.

Everything is the production code: the plugin sandbox (a worker thread with the time limit),
decision checks, order intents written to a system DB before sending, the ``SimulatedBroker``
(``next_open`` or ``last_close`` price rule) persisting its account, transactions recorded from
the broker's fills, ledgers rebuilt from them. Both DBs are temporary files. It costs a few
milliseconds a minute, so it is the reference the fast event loop (``replay.py``) is tested
against and an option for short periods (``--exact``), not the default.
"""

from __future__ import annotations

import logging
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from app.backtest.bars import Bars, tick_minutes
from app.backtest.errors import BacktestError
from app.backtest.replay import MAX_PROBLEMS, Progress
from app.backtest.result import RunResult, result_from_fills
from app.clock import ManualClock
from db.calendar import nyse
from db.simbroker import SimBrokerStore
from db.timeutil import from_epoch, iso_z, to_epoch

logger = logging.getLogger(__name__)


def NO_GUARDS(limits: type) -> Any:  # noqa: N802 - reads as a constant
    """The live risk guards off: they are safety rails for a live account (daily loss,
    drawdown, orders per day, a minute's order value, the pause after a broker refusal), not
    part of the strategy, and the fast replay has none; a backtest measures the strategy."""
    return limits(algo_max_daily_loss_pct=0.0, algo_max_drawdown_pct=0.0,
                  algo_max_orders_per_day=0, account_max_daily_loss_pct=0.0,
                  account_max_minute_order_pct=0.0, reject_cooldown_minutes=0,
                  max_rejections=10**9)


def _guard_stop(engine: Any, algo_id: int, t: int, problems: list[dict[str, Any]]) -> bool:
    """After a tick: still running? If a guard stopped or paused it, record why (always, not
    capped like other problems: a guard stop is what a reader of the report looks for)."""
    view = engine.algorithm_view(algo_id)
    if view.status == "running":
        return True
    problems.append({"timestamp": iso_z(t), "kind": "guard",
                     "reason": f"{view.status}: {view.error or 'a risk guard'}"})
    return False


def run_exact(info: Any, params: dict[str, Any], bars: Bars, first: int, capital: float, *,
              slippage_bps: float = 0.0, commission_per_share: float = 0.0,
              fill: str = "open", timeout_s: float = 2.0, plugin_dirs: tuple[Path, ...] = (),
              progress: Progress | None = None, strict_cash: bool = False,
              account_cash: float | None = None, risk: Any = None) -> RunResult:
    """``account_cash``: the simulated account's cash; by default the algorithm's capital with
    ``strict_cash`` (the account holds nothing else, so the broker refuses a buy that overdraws
    it) and twice that without (as live and in the demo, the account holds more than one
    algorithm's slice, so a buy the engine accepted fills even if it overdraws the slice).
    ``risk``: the live risk guards to apply (``RiskLimits``; default none): a guard that stops
    the algorithm is a problem of kind ``guard`` with its reason, and the run goes on to the
    end (the position kept or sold as the guard says)."""
    from app.broker.simulated import SimulatedBroker, last_close, next_open
    from app.engine.facade import Engine, EngineError
    from app.engine.guards import RiskLimits
    from db.market import MarketStore
    from db.system import SystemStore

    n = len(bars)
    if not 0 <= first < n:
        raise BacktestError("no bars to replay in the chosen period")
    calendar = nyse()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="autotrader-backtest-") as tmp:
        system = SystemStore(Path(tmp) / "system.db")
        market = MarketStore(Path(tmp) / "market.db", calendar)
        ts = bars.ts.tolist()
        market.insert_rows(
            (bars.ticker, t, o, h, lo, c, int(v)) for t, o, h, lo, c, v in zip(
                ts, bars.o.tolist(), bars.h.tolist(), bars.l.tolist(), bars.c.tolist(),
                bars.v.tolist(), strict=True))
        minutes = tick_minutes(bars, first, calendar).tolist()
        clock = ManualClock(from_epoch(minutes[0]))
        rule = next_open(market) if fill == "open" else last_close(market)
        if account_cash is None:
            account_cash = float(capital) * (1.0 if strict_cash else 2.0)
        broker = SimulatedBroker(system, market, clock, starting_cash=float(account_cash),
                                 slippage_bps=slippage_bps,
                                 commission_per_share=commission_per_share, price_rule=rule,
                                 symbols={bars.ticker}, calendar=calendar)
        engine = Engine(mode="backtest", system=system, market=market, broker=broker, feed=None,
                        clock=clock, calendar=calendar, plugin_dirs=list(plugin_dirs),
                        plugin_timeout=timeout_s, workers=1,
                        risk=risk if risk is not None else NO_GUARDS(RiskLimits))
        problems: list[dict[str, Any]] = []
        refused = errors = 0
        try:
            try:
                algo_id = engine.create_algorithm(info.name, bars.ticker, float(capital), params)
            except EngineError as e:
                raise BacktestError(str(e)) from None
            engine.start()
            view = engine.algorithm_view(algo_id)
            if view.status != "running":
                raise BacktestError(f"plugin {info.name!r} failed to start: {view.error}")
            running = True
            for k, t in enumerate(minutes):
                if progress is not None and not k % 256:
                    progress(k, len(minutes))
                minute = from_epoch(t)
                clock.set(minute + timedelta(seconds=2))  # the scheduler's 2 s offset
                result = engine.run_tick(minute)
                if risk is not None and running:
                    running = _guard_stop(engine, algo_id, t, problems)
                for d in result.decisions:
                    if d["refused"]:
                        kind = "error" if d["refused"].startswith("run() ") else "refused"
                        refused += kind == "refused"
                        errors += kind == "error"
                        if len(problems) < MAX_PROBLEMS:
                            problems.append({"timestamp": iso_z(t), "kind": kind,
                                             "reason": d["refused"]})
            if progress is not None:
                progress(len(minutes), len(minutes))
            txs = system.transactions(algo_id)
            # Orders the broker rejected after the tick sent them (the fast loop counts these
            # as refusals at their minute too).
            for ts_, why in SimBrokerStore(system).rejected_orders():
                refused += 1
                if len(problems) < MAX_PROBLEMS:
                    problems.append({"timestamp": iso_z(int(ts_)), "kind": "refused",
                                     "reason": f"rejected by the broker: {why}"})
            problems.sort(key=lambda p: p["timestamp"])
        finally:
            engine.close()
            system.close()
            market.close()
    fills = []
    cash, pos = float(capital), 0
    for tx in txs:
        q = int(tx["shares"])
        signed = q if tx["type"] == "buy" else -q
        cash -= signed * tx["price"] + tx["commission"]
        pos += signed
        t = to_epoch(tx["timestamp"]) // 60 * 60  # filled 2 s into the minute
        i = int(np.searchsorted(bars.ts, t))  # the first bar at or after the fill minute
        fills.append({"i": i, "ts": t, "type": tx["type"], "shares": q,
                      "price": tx["price"], "commission": tx["commission"], "cash": cash,
                      "position": pos})
    elapsed = time.perf_counter() - t0
    sub = bars.slice(first, n)
    counts = {"buy": sum(f["type"] == "buy" for f in fills),
              "sell": sum(f["type"] == "sell" for f in fills)}
    return result_from_fills(
        plugin=info.name, ticker=bars.ticker, ts=sub.ts, close=sub.c, first_index=first,
        params=params, capital=capital, path="exact", fills=fills, decisions=counts,
        refused=refused, errors=errors, problems=problems, elapsed_s=elapsed)
