"""The vectorised path: the same strategy computed on whole arrays, for sweeps and speed.

A vectorised version re-implements one plugin's rule with numpy, so it exists per plugin
(``VECTORISED``) and a test checks it against the event-driven run of the plugin itself, trade
for trade. Orders go through the same fill rule and the same refusals as the event path
(``check_against_ledger``'s buy-beyond-cash at the last close, the broker's buying-power
check at the fill price); only the few minutes where something happens run Python code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from app.backtest.bars import Bars
from app.backtest.errors import BacktestError
from app.backtest.fills import fill_price
from app.backtest.result import RunResult, curves_from_fills, day_ids_for

logger = logging.getLogger(__name__)


def window_means(c: np.ndarray, w: int) -> np.ndarray:
    """``out[i]`` = mean of the ``w`` values before index i (``c[i-w:i]``), NaN when i < w.

    Each window is summed on its own (no running cumsum), so the rounding matches the
    plugin's ``sum(closes[-w:]) / w`` closely enough that only true ties could differ.
    """
    n = c.shape[0]
    out = np.full(n + 1, np.nan)
    if n >= w:
        out[w:] = sliding_window_view(c, w).sum(axis=1) / w
    return out[:n]


def sma_crossover(bars: Bars, first: int, capital: float, params: dict[str, Any], *,
                  slippage_bps: float, commission_per_share: float,
                  fill: str) -> list[dict[str, Any]]:
    """``algorithm/sma_crossover.py`` on arrays: hold while SMA short > SMA long.

    The plugin at minute i sees closes[:i]; with fewer than ``sma_long`` bars it holds; flat
    and short > long: buy ``int(cash * 0.99 // last_close)``; holding and short < long: sell all.
    Its cash counts buys and sells but not commission, as the plugin's own loop does.
    """
    s, lg = int(params.get("sma_short", 20)), int(params.get("sma_long", 50))
    if s <= 0 or lg <= 0:
        raise BacktestError("sma_short and sma_long must be positive")
    c = bars.c
    n = c.shape[0]
    short, long_ = window_means(c, s), window_means(c, lg)
    valid = np.arange(n) >= lg
    valid[:first] = False
    up = np.flatnonzero(valid & (short > long_))
    down = np.flatnonzero(valid & (short < long_))
    opens, closes, ts = bars.o, bars.c, bars.ts
    fills: list[dict[str, Any]] = []
    cash = own_cash = float(capital)      # real (with commission) / the plugin's view
    held, i = 0, first
    while True:
        if held == 0:
            k = np.searchsorted(up, i)
            if k >= up.shape[0]:
                break
            i = int(up[k])
            last = float(closes[i - 1])
            qty = int(own_cash * 0.99 // last)
            side = "buy"
        else:
            k = np.searchsorted(down, i)
            if k >= down.shape[0]:
                break
            i = int(down[k])
            qty, side = held, "sell"
        if qty <= 0:
            i += 1
            continue
        if side == "buy" and qty * float(closes[i - 1]) > cash + 1e-6:
            i += 1                                   # refused: buy beyond cash at last close
            continue
        base = float(opens[i]) if fill == "open" else float(closes[i - 1])
        price = fill_price(side, base, slippage_bps)
        comm = qty * commission_per_share
        if side == "buy" and qty * price + comm > cash + 1e-9:
            i += 1                                   # the broker rejects: buying power
            continue
        if side == "buy":
            cash -= qty * price + comm
            own_cash -= qty * price
            held = qty
        else:
            cash += qty * price - comm
            own_cash += qty * price
            held = 0
        fills.append({"i": i, "ts": int(ts[i]), "type": side, "shares": qty, "price": price,
                      "commission": comm, "cash": cash, "position": held})
        i += 1
    return fills


VectorFn = Callable[..., list[dict[str, Any]]]
VECTORISED: dict[str, VectorFn] = {"sma_crossover": sma_crossover}


def run_vector(plugin: str, params: dict[str, Any], bars: Bars, first: int, capital: float, *,
               slippage_bps: float = 0.0, commission_per_share: float = 0.0,
               fill: str = "open") -> RunResult:
    fn = VECTORISED.get(plugin)
    if fn is None:
        raise BacktestError(
            f"plugin {plugin!r} has no vectorised version (available: "
            f"{', '.join(sorted(VECTORISED))}); run it without --vector")
    t0 = time.perf_counter()
    fills = fn(bars, first, capital, params, slippage_bps=slippage_bps,
               commission_per_share=commission_per_share, fill=fill)
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
    ).finish()
