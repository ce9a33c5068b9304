"""The vectorised path: the same strategy computed on whole arrays, for sweeps and speed.

A vectorised version re-implements one plugin's rule with numpy, so it exists per plugin
(``VECTORISED``) and a test checks it against the event-driven run of the plugin itself, trade
for trade. Orders go through the same fill rule and the same refusals as the event path
(``check_against_ledger``'s buy-beyond-cash at the last close; with ``strict_cash`` the
fill model's buying-power check at the fill price); only the few minutes where something happens run Python code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from app.backtest.bars import Bars, tick_minutes, tick_schedule
from app.backtest.errors import BacktestError
from app.backtest.fills import fill_price, refusal
from app.backtest.result import RunResult, curves_from_fills, day_ids_for
from db.calendar import nyse

logger = logging.getLogger(__name__)


def window_means(c: np.ndarray, w: int) -> np.ndarray:
    """``out[k]`` = mean of the ``w`` values before index k (``c[k-w:k]``), NaN when k < w;
    ``k`` runs to ``len(c)`` (all bars visible).

    Each window is summed on its own (no running cumsum), so the rounding matches the
    plugin's ``sum(closes[-w:]) / w`` closely enough that only true ties could differ.
    """
    n = c.shape[0]
    out = np.full(n + 1, np.nan)
    if n >= w:
        out[w:] = sliding_window_view(c, w).sum(axis=1) / w
    return out


def sma_crossover(bars: Bars, first: int, capital: float, params: dict[str, Any], *,
                  slippage_bps: float, commission_per_share: float, fill: str,
                  strict_cash: bool = False, ledger_cash: bool = False) -> list[dict[str, Any]]:
    """``algorithm/sma_crossover.py`` on arrays: hold while SMA short > SMA long.

    At each tick minute the plugin sees the k bars before it; with fewer than ``sma_long``
    it holds; flat and short > long: buy ``int(cash * 0.99 // last_close)``; holding and
    short < long: sell all. Its cash counts buys and sells but not commission, as the
    plugin's own loop does; ``ledger_cash`` sizes with the ledger's cash instead
    (commission included), as ``algorithm/sma_fast.py`` does through ``algorithm.cash``.
    """
    s, lg = int(params.get("sma_short", 20)), int(params.get("sma_long", 50))
    if s <= 0 or lg <= 0:
        raise BacktestError("sma_short and sma_long must be positive")
    minutes, seen, here = tick_schedule(bars, tick_minutes(bars, first, nyse()))
    k = np.asarray(seen, dtype=np.int64)          # bars visible at each tick minute
    short, long_ = window_means(bars.c, s)[k], window_means(bars.c, lg)[k]
    valid = k >= lg
    up = np.flatnonzero(valid & (short > long_))
    down = np.flatnonzero(valid & (short < long_))
    opens, closes = bars.o, bars.c
    fills: list[dict[str, Any]] = []
    cash = own_cash = float(capital)      # real (with commission) / the plugin's view
    held, j = 0, 0
    while True:
        if held == 0:
            p = np.searchsorted(up, j)
            if p >= up.shape[0]:
                break
            j = int(up[p])
            i = seen[j]
            sizing = cash if ledger_cash else own_cash
            qty, side = int(sizing * 0.99 // float(closes[i - 1])), "buy"
        else:
            p = np.searchsorted(down, j)
            if p >= down.shape[0]:
                break
            j = int(down[p])
            i = seen[j]
            qty, side = held, "sell"
        last = float(closes[i - 1])
        if qty <= 0 or side == "buy" and qty * last > cash + 1e-6:
            j += 1                      # hold, or refused: a buy beyond cash at the last close
            continue
        base = float(opens[i]) if fill == "open" and here[j] else last
        price = fill_price(side, base, slippage_bps)
        comm = qty * commission_per_share
        if strict_cash and refusal(side, qty, price, comm, cash, held):
            j += 1                      # the broker rejects it: buying power
            continue
        if side == "buy":
            cash -= qty * price + comm
            own_cash -= qty * price
            held = qty
        else:
            cash += qty * price - comm
            own_cash += qty * price
            held = 0
        fills.append({"i": i, "ts": minutes[j], "type": side, "shares": qty, "price": price,
                      "commission": comm, "cash": cash, "position": held})
        j += 1
    return fills


VectorFn = Callable[..., list[dict[str, Any]]]
VECTORISED: dict[str, VectorFn] = {
    "sma_crossover": sma_crossover,
    "sma_fast": partial(sma_crossover, ledger_cash=True),
}


def run_vector(plugin: str, params: dict[str, Any], bars: Bars, first: int, capital: float, *,
               slippage_bps: float = 0.0, commission_per_share: float = 0.0,
               fill: str = "open", strict_cash: bool = False) -> RunResult:
    fn = VECTORISED.get(plugin)
    if fn is None:
        raise BacktestError(
            f"plugin {plugin!r} has no vectorised version (available: "
            f"{', '.join(sorted(VECTORISED))}); run it without --vector")
    t0 = time.perf_counter()
    fills = fn(bars, first, capital, params, slippage_bps=slippage_bps,
               commission_per_share=commission_per_share, fill=fill, strict_cash=strict_cash)
    sub = bars.slice(first, len(bars))
    equity, position = curves_from_fills(sub.ts, sub.c, fills, first, float(capital))
    elapsed = time.perf_counter() - t0
    return RunResult(
        plugin=plugin, ticker=bars.ticker, params=dict(params), initial_capital=float(capital),
        path="vector", ts=sub.ts, close=sub.c, equity=equity, position=position,
        day_ids=day_ids_for(sub.ts), fills=fills,
        decisions={"buy": sum(f["type"] == "buy" for f in fills),
                   "sell": sum(f["type"] == "sell" for f in fills)},
        elapsed_s=elapsed,
    ).finish().overdraft_from_fills()
