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


def _signals(bars: Bars, minutes: list[int], seen: list[int], here: list[bool],
             buy: np.ndarray, sell: np.ndarray, capital: float, *, slippage_bps: float,
             commission_per_share: float, fill: str, strict_cash: bool,
             size: np.ndarray | None = None) -> list[dict[str, Any]]:
    """The templates' common loop: at tick j a flat algorithm buys when ``buy[j]`` with
    ``int(ledger cash * 0.99 // size[j])`` shares (``size``: the last close by default), and
    a holding one sells everything when ``sell[j]``; the same refusals and fills as
    ``sma_crossover`` (only the minutes where something happens run Python code)."""
    up, down = np.flatnonzero(buy), np.flatnonzero(sell)
    opens, closes = bars.o, bars.c
    fills: list[dict[str, Any]] = []
    cash, held, j = float(capital), 0, 0
    while True:
        wanted = up if held == 0 else down
        p = np.searchsorted(wanted, j)
        if p >= wanted.shape[0]:
            break
        j = int(wanted[p])
        i = seen[j]
        last = float(closes[i - 1])
        if held == 0:
            basis = last if size is None else float(size[j])
            qty, side = int(cash * 0.99 // basis), "buy"
        else:
            qty, side = held, "sell"
        if qty <= 0 or side == "buy" and qty * last > cash + 1e-6:
            j += 1
            continue
        base = float(opens[i]) if fill == "open" and here[j] else last
        price = fill_price(side, base, slippage_bps)
        comm = qty * commission_per_share
        if strict_cash and refusal(side, qty, price, comm, cash, held):
            j += 1
            continue
        cash += -(qty * price + comm) if side == "buy" else qty * price - comm
        held = qty if side == "buy" else 0
        fills.append({"i": i, "ts": minutes[j], "type": side, "shares": qty, "price": price,
                      "commission": comm, "cash": cash, "position": held})
        j += 1
    return fills


def _window_sums(x: np.ndarray, w: int) -> np.ndarray:
    """``out[k]`` = sum of ``x[k-w:k]`` (NaN when k < w), for k up to ``len(x)``."""
    out = np.full(x.shape[0] + 1, np.nan)
    if x.shape[0] >= w:
        out[w:] = sliding_window_view(x, w).sum(axis=1)
    return out


def _schedule(bars: Bars, first: int) -> tuple[list[int], list[int], list[bool], np.ndarray]:
    minutes, seen, here = tick_schedule(bars, tick_minutes(bars, first, nyse()))
    return minutes, seen, here, np.asarray(seen, dtype=np.int64)


def _days(bars: Bars, minutes: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tick minutes (epoch seconds) as an array, each one's day number (epoch // 86,400)
    and each bar's: the day-based strategies group by them."""
    t = np.asarray(minutes, dtype=np.int64)
    return t, t // 86_400, bars.ts // 86_400


def rsi2(bars: Bars, first: int, capital: float, params: dict[str, Any],
         **costs: Any) -> list[dict[str, Any]]:
    """``algorithm/rsi2.py``: buy when last > SMA(trend) and Cutler's RSI < oversold; sell
    when last > SMA(exit)."""
    p, trend = int(params.get("rsi_period", 2)), int(params.get("trend_sma", 200))
    ex, oversold = int(params.get("exit_sma", 5)), float(params.get("oversold", 10.0))
    if min(p, trend, ex) <= 0:
        raise BacktestError("rsi_period, trend_sma and exit_sma must be positive")
    minutes, seen, here, k = _schedule(bars, first)
    c = bars.c
    d = np.diff(c)
    up_s = _window_sums(np.where(d > 0, d, 0.0), p)        # index m: d[m-p:m]
    dn_s = _window_sums(np.where(d < 0, -d, 0.0), p)
    km1 = np.maximum(k - 1, 0)
    up, dn = up_s[km1], dn_s[km1]
    tot = up + dn
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = np.where(tot == 0, 50.0, 100.0 * up / tot)
    last = c[np.maximum(k - 1, 0)]
    valid = k >= max(trend, ex, p + 1)
    with np.errstate(invalid="ignore"):
        buy = valid & (last > _window_sums(c, trend)[k] / trend) & (rsi < oversold)
        sell = valid & (last > _window_sums(c, ex)[k] / ex)
    return _signals(bars, minutes, seen, here, buy, sell, capital, **costs)


def bollinger(bars: Bars, first: int, capital: float, params: dict[str, Any],
              **costs: Any) -> list[dict[str, Any]]:
    """``algorithm/bollinger.py``: buy below mid - width * sd, sell above mid."""
    w, width = int(params.get("window", 20)), float(params.get("width", 2.0))
    if w <= 1:
        raise BacktestError("window must be at least 2")
    minutes, seen, here, k = _schedule(bars, first)
    c = bars.c
    n = c.shape[0]
    mid = np.full(n + 1, np.nan)
    sd = np.full(n + 1, np.nan)
    if n >= w:
        view = sliding_window_view(c, w)
        m = view.sum(axis=1) / w
        mid[w:] = m
        sd[w:] = np.sqrt(((view - m[:, None]) ** 2).sum(axis=1) / w)
    last = c[np.maximum(k - 1, 0)]
    valid = k >= w
    with np.errstate(invalid="ignore"):
        buy = valid & (last < mid[k] - width * sd[k])
        sell = valid & (last > mid[k])
    return _signals(bars, minutes, seen, here, buy, sell, capital, **costs)


def _ny_open(days: np.ndarray) -> dict[int, int]:
    """UTC day number -> epoch of 9:30 New York that day (a session lies in one UTC date)."""
    from datetime import date, datetime, time, timedelta

    from db.calendar import EXCHANGE_TZ

    epoch = date(1970, 1, 1)
    return {int(d): int(datetime.combine(epoch + timedelta(days=int(d)), time(9, 30),
                                         EXCHANGE_TZ).timestamp()) for d in np.unique(days)}


def opening_range(bars: Bars, first: int, capital: float, params: dict[str, Any],
                  **costs: Any) -> list[dict[str, Any]]:
    """``algorithm/opening_range.py``: the high/low of the bars in the first
    ``range_minutes``; buy above the high before ``exit_minute``, sell below the low, at
    ``exit_minute``, or before the range forms (and on a day without one)."""
    rng, exit_at = int(params.get("range_minutes", 30)), int(params.get("exit_minute", 375))
    if rng <= 0:
        raise BacktestError("range_minutes must be positive")
    minutes, seen, here, k = _schedule(bars, first)
    t, tday, bday = _days(bars, minutes)
    opens = _ny_open(np.concatenate((tday, bday)))
    o_t = np.fromiter((opens[int(d)] for d in tday), dtype=np.int64, count=t.shape[0])
    minute = (t - o_t) // 60
    hi_day: dict[int, float] = {}
    lo_day: dict[int, float] = {}
    for d in np.unique(tday).tolist():
        start = opens[d]
        a = int(np.searchsorted(bars.ts, start))
        b = int(np.searchsorted(bars.ts, start + 60 * rng))
        if b > a and int(bday[a]) == d:
            hi_day[d], lo_day[d] = float(bars.h[a:b].max()), float(bars.l[a:b].min())
    hi = np.array([hi_day.get(int(d), np.nan) for d in tday])
    lo = np.array([lo_day.get(int(d), np.nan) for d in tday])
    has = ~np.isnan(hi) & (k > 0)
    last = bars.c[np.maximum(k - 1, 0)]
    formed = minute >= rng
    with np.errstate(invalid="ignore"):
        buy = formed & has & (minute < exit_at) & (last > hi)
        sell = ~formed | ~has | (minute >= exit_at) | (last < lo)
    return _signals(bars, minutes, seen, here, buy, sell, capital, **costs)


def momentum(bars: Bars, first: int, capital: float, params: dict[str, Any],
             **costs: Any) -> list[dict[str, Any]]:
    """``algorithm/momentum.py``: at each date's first tick, in when the close-to-close
    change over ``lookback_days`` earlier sessions is above ``threshold``, out otherwise."""
    look, thr = int(params.get("lookback_days", 5)), float(params.get("threshold", 0.0))
    if look <= 0:
        raise BacktestError("lookback_days must be positive")
    minutes, seen, here, k = _schedule(bars, first)
    _, tday, bday = _days(bars, minutes)
    days, last_idx = np.unique(bday[::-1], return_index=True)   # each day's last bar
    daily = bars.c[bday.shape[0] - 1 - last_idx]
    q = np.searchsorted(days, tday)                  # sessions with bars before the tick's
    firsts = np.concatenate(([True], tday[1:] != tday[:-1]))
    ok = firsts & (q > look)
    prev = daily[np.clip(q - 1, 0, None)]
    base = daily[np.clip(q - 1 - look, 0, None)]
    change = prev / base - 1.0
    buy = ok & (change > thr)
    sell = ok & (change <= thr)
    return _signals(bars, minutes, seen, here, buy, sell, capital, size=prev, **costs)


VectorFn = Callable[..., list[dict[str, Any]]]
VECTORISED: dict[str, VectorFn] = {
    "sma_crossover": sma_crossover,
    "sma_fast": partial(sma_crossover, ledger_cash=True),
    "rsi2": rsi2,
    "bollinger": bollinger,
    "opening_range": opening_range,
    "momentum": momentum,
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
