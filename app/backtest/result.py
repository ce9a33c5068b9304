"""What one backtest run produces, whichever path (event, vector or exact) ran it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.backtest.metrics import Metrics, RoundTrip, compute


@dataclass
class RunResult:
    plugin: str
    ticker: str
    params: dict[str, Any]
    initial_capital: float
    path: str                      # "event" (the plugin, in memory), "vector" or "exact"
    ts: np.ndarray                 # the replayed bars' minutes (no history), epoch seconds
    close: np.ndarray
    equity: np.ndarray             # value after each bar's close
    position: np.ndarray           # shares held after each bar
    day_ids: np.ndarray            # session number of each bar
    fills: list[dict[str, Any]]    # i (first bar at/after the fill), ts (the minute), type,
                                   # shares, price, commission, cash, position
    decisions: dict[str, int] = field(default_factory=dict)
    refused: int = 0               # decisions refused (counted; the first ones are in problems)
    errors: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)  # first refusals/errors
    elapsed_s: float = 0.0
    metrics: Metrics | None = None
    trips: list[RoundTrip] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)  # how it ran (fill, costs, data)
    max_overdraft: float = 0.0     # the most a fill took the algorithm's cash below zero
    stopped: str | None = None     # why the run ended before the last bar (None: it did not)

    @property
    def calls(self) -> int:
        return sum(self.decisions.values()) + self.refused + self.errors

    @property
    def all_failed(self) -> bool:
        """Every call of the plugin raised, overran or was cut short."""
        return self.errors > 0 and not sum(self.decisions.values()) and not self.refused

    def overdraft_from_fills(self) -> RunResult:
        self.max_overdraft = round(max([0.0, *(-f["cash"] for f in self.fills)]), 6)
        return self

    @property
    def bars_per_s(self) -> float:
        """Replayed bars per second of the run itself (data preparation excluded)."""
        return len(self.ts) / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def finish(self) -> RunResult:
        comm = sum(float(f.get("commission", 0.0)) for f in self.fills)
        self.metrics, self.trips = compute(
            ts=self.ts, close=self.close, equity=self.equity, position=self.position,
            day_ids=self.day_ids, fills=self.fills, initial_capital=self.initial_capital,
            commission=comm)
        return self


def day_ids_for(ts: np.ndarray) -> np.ndarray:
    """The session of each bar: NYSE regular hours (13:30-21:00 UTC at the widest) never
    cross a UTC midnight, so the UTC day number identifies the session."""
    return (ts // 86400).astype(np.int64)


def curves_from_fills(ts: np.ndarray, close: np.ndarray, fills: list[dict[str, Any]],
                      first_index: int, capital: float) -> tuple[np.ndarray, np.ndarray]:
    """Equity and position after each bar from the fills (each carries its bar index ``i``).

    Building the curves afterwards keeps the per-minute loop free of bookkeeping.
    """
    n = ts.shape[0]
    dpos = np.zeros(n, dtype=np.float64)
    dcash = np.zeros(n, dtype=np.float64)
    for f in fills:
        k = min(f["i"] - first_index, n - 1)  # a fill takes effect from the next bar on
        q = f["shares"] if f["type"] == "buy" else -f["shares"]
        dpos[k] += q
        dcash[k] -= q * f["price"] + f.get("commission", 0.0)
    position = np.cumsum(dpos)
    equity = capital + np.cumsum(dcash) + position * close
    return equity, position


def result_from_fills(*, plugin: str, ticker: str, ts: np.ndarray, close: np.ndarray,
                      first_index: int, params: dict[str, Any], capital: float, path: str,
                      fills: list[dict[str, Any]], decisions: dict[str, int],
                      refused: int, errors: int, problems: list[dict[str, Any]],
                      elapsed_s: float) -> RunResult:
    """The finished result of a run over ``ts``/``close`` (bars from ``first_index`` on)."""
    equity, position = curves_from_fills(ts, close, fills, first_index, float(capital))
    return RunResult(
        plugin=plugin, ticker=ticker, params=dict(params), initial_capital=float(capital),
        path=path, ts=ts, close=close, equity=equity, position=position,
        day_ids=day_ids_for(ts), fills=fills, decisions=decisions, refused=refused,
        errors=errors, problems=problems, elapsed_s=elapsed_s,
    ).finish().overdraft_from_fills()
