"""Performance figures from an equity curve and a list of fills.

Conventions (also printed in the report):
- Sharpe and Sortino use DAILY returns: the equity at each session's last bar, day over day,
  annualised with sqrt(252), risk-free rate 0. Sortino's downside deviation is the root mean
  square of the negative daily returns (zero for the others).
- CAGR annualises over trading sessions: years = sessions / 252.
- Max drawdown is measured on the minute equity curve (the value after each bar's close).
- A trade is a round trip: from a fill that opens a position from flat to the fill that
  brings it back to flat. Win rate = round trips with positive P&L (after commission) /
  closed round trips. Exposure = share of the backtest's minutes spent holding a position.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

TRADING_DAYS = 252

CONVENTIONS = {
    "fill": "a decision made at minute t (seeing bars before t) fills at the open of bar t, "
            "plus slippage (bps, against the trade) and commission per share",
    "sharpe_sortino": "daily returns (equity at each session's last bar), annualised sqrt(252), "
                      "risk-free rate 0",
    "cagr": "years = sessions / 252",
    "max_drawdown": "on the minute equity curve",
    "trades": "round trips flat -> position -> flat; win rate over closed round trips",
    "exposure": "share of minutes with a position",
}


@dataclass
class RoundTrip:
    entry_ts: int
    exit_ts: int | None
    entry_price: float          # volume-weighted average of the buys
    exit_price: float | None    # volume-weighted average of the sells
    shares: int                 # the most shares held during the trip
    pnl: float                  # realised (or marked to the last close if still open)
    closed: bool


@dataclass
class Metrics:
    initial_capital: float
    final_equity: float
    total_return: float
    cagr: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    max_drawdown_peak_ts: int | None
    max_drawdown_trough_ts: int | None
    trades: int
    open_trades: int
    fills: int
    win_rate: float | None
    exposure: float
    commission: float
    buy_and_hold_return: float
    sessions: int
    bars: int
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        return d


def round_trips(fills: list[dict[str, Any]], last_close: float) -> list[RoundTrip]:
    """Group fills (``type``, ``shares``, ``price``, ``commission``, ``ts``) into round trips;
    a trip still open is marked at ``last_close``."""
    out: list[RoundTrip] = []
    pos = 0
    cur: dict[str, Any] | None = None
    for f in fills:
        qty = int(f["shares"])
        signed = qty if f["type"] == "buy" else -qty
        if cur is None:
            cur = {"entry_ts": f["ts"], "buy_q": 0, "buy_v": 0.0, "sell_q": 0, "sell_v": 0.0,
                   "comm": 0.0, "max": 0}
        if signed > 0:
            cur["buy_q"] += qty
            cur["buy_v"] += qty * f["price"]
        else:
            cur["sell_q"] += qty
            cur["sell_v"] += qty * f["price"]
        cur["comm"] += float(f.get("commission", 0.0) or 0.0)
        pos += signed
        cur["max"] = max(cur["max"], abs(pos))
        if pos == 0:
            out.append(_trip(cur, f["ts"], closed=True, mark=0.0))
            cur = None
    if cur is not None:
        out.append(_trip(cur, None, closed=False, mark=pos * last_close))
    return out


def _trip(cur: dict[str, Any], exit_ts: int | None, closed: bool, mark: float) -> RoundTrip:
    pnl = cur["sell_v"] - cur["buy_v"] - cur["comm"] + mark
    return RoundTrip(
        entry_ts=int(cur["entry_ts"]), exit_ts=None if exit_ts is None else int(exit_ts),
        entry_price=cur["buy_v"] / cur["buy_q"] if cur["buy_q"] else float("nan"),
        exit_price=cur["sell_v"] / cur["sell_q"] if cur["sell_q"] else None,
        shares=int(cur["max"]), pnl=float(pnl), closed=closed)


def daily_closes(equity: np.ndarray, day_ids: np.ndarray) -> np.ndarray:
    """Equity at the last bar of each session (``day_ids`` numbers the sessions)."""
    last = np.flatnonzero(np.diff(day_ids)) if day_ids.size else np.zeros(0, dtype=np.int64)
    idx = np.concatenate((last, [day_ids.size - 1])) if day_ids.size else last
    return equity[idx.astype(np.int64)]


def compute(*, ts: np.ndarray, close: np.ndarray, equity: np.ndarray, position: np.ndarray,
            day_ids: np.ndarray, fills: list[dict[str, Any]], initial_capital: float,
            commission: float = 0.0) -> tuple[Metrics, list[RoundTrip]]:
    """All figures for one run. Arrays cover the backtest's minutes only (no warm-up)."""
    n = int(ts.shape[0])
    final = float(equity[-1]) if n else initial_capital
    sessions = int(np.unique(day_ids).size) if n else 0
    total = final / initial_capital - 1.0
    years = sessions / TRADING_DAYS
    cagr = (final / initial_capital) ** (1.0 / years) - 1.0 if years > 0 and final > 0 else None
    start_eq = np.concatenate(([initial_capital], daily_closes(equity, day_ids)))
    rets = start_eq[1:] / start_eq[:-1] - 1.0
    sharpe = sortino = None
    if rets.size >= 2:
        sd = float(np.std(rets, ddof=1))
        mean = float(np.mean(rets))
        sharpe = mean / sd * math.sqrt(TRADING_DAYS) if sd > 0 else None
        downside = math.sqrt(float(np.mean(np.minimum(rets, 0.0) ** 2)))
        sortino = mean / downside * math.sqrt(TRADING_DAYS) if downside > 0 else None
    mdd, peak_ts, trough_ts = 0.0, None, None
    if n:
        peaks = np.maximum.accumulate(np.maximum(equity, initial_capital))
        dd = equity / peaks - 1.0
        j = int(np.argmin(dd))
        mdd = float(dd[j])
        if mdd < 0:
            trough_ts = int(ts[j])
            k = int(np.flatnonzero(equity[: j + 1] >= peaks[j] - 1e-9)[-1]) if (
                equity[: j + 1] >= peaks[j] - 1e-9).any() else 0
            peak_ts = int(ts[k])
    trips = round_trips(fills, float(close[-1]) if n else 0.0)
    closed = [t for t in trips if t.closed]
    win_rate = sum(t.pnl > 0 for t in closed) / len(closed) if closed else None
    exposure = float(np.count_nonzero(position)) / n if n else 0.0
    bh = float(close[-1] / close[0] - 1.0) if n else 0.0
    m = Metrics(
        initial_capital=float(initial_capital), final_equity=final, total_return=total,
        cagr=cagr, sharpe=sharpe, sortino=sortino, max_drawdown=mdd,
        max_drawdown_peak_ts=peak_ts, max_drawdown_trough_ts=trough_ts, trades=len(closed),
        open_trades=len(trips) - len(closed), fills=len(fills), win_rate=win_rate,
        exposure=exposure, commission=float(commission), buy_and_hold_return=bh,
        sessions=sessions, bars=n)
    return m, trips
