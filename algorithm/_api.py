"""The fast path for plugins, beside the seed's ``get_data_for_algorithm``/``get_transactions``.

While the engine runs a plugin it puts a snapshot of that algorithm's ledger in a thread-local
context, so ``position(algo_id)`` and ``cash(algo_id)`` are a lookup, not a DB read. Outside
the engine (a plugin run by hand, a backtest that sets no context) they fall back to the
algorithm's transactions, so a plugin using them works in every mode.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

import db


@dataclass(slots=True)
class AlgoContext:
    """What the engine knows about the algorithm being run. The live engine builds one per
    plugin call; a backtest, which runs one algorithm minute after minute, moves one object
    forward through its public fields (``current_time`` and ``last_price`` each minute, a new
    one after each fill) instead of a new snapshot per call, which would cost more than the
    plugin call itself. ``current_time`` is None only before a backtest's first minute."""

    algo_id: int
    ticker: str
    initial_capital: float
    cash: float
    position: int
    avg_cost: float | None
    last_price: float | None
    current_time: datetime | None


# The backtest's name for the same class (app/backtest/replay.py).
RunningContext = AlgoContext


_local = threading.local()


def set_context(ctx: AlgoContext | None) -> None:
    """Engine use only: the context for plugin calls on this thread."""
    _local.ctx = ctx


def context() -> AlgoContext | None:
    """The running algorithm's context, or None outside the engine."""
    return getattr(_local, "ctx", None)


def _own(algo_id: int) -> AlgoContext | None:
    ctx = context()
    return ctx if ctx is not None and ctx.algo_id == int(algo_id) else None


def position(algo_id: int) -> int:
    """Shares the algorithm holds."""
    ctx = _own(algo_id)
    if ctx is not None:
        return ctx.position
    held = 0
    for tx in db.get_transactions(algo_id):
        held += int(tx["shares"]) if tx["type"] == "buy" else -int(tx["shares"])
    return held


def cash(algo_id: int, initial_capital: float | None = None) -> float:
    """The algorithm's cash. Outside the engine ``initial_capital`` is needed to compute it."""
    ctx = _own(algo_id)
    if ctx is not None:
        return ctx.cash
    if initial_capital is None:
        raise ValueError("cash() outside the engine needs initial_capital")
    c = float(initial_capital)
    for tx in db.get_transactions(algo_id):
        amount = float(tx["shares"]) * float(tx["price"])
        c += -amount if tx["type"] == "buy" else amount
        c -= float(tx.get("commission") or 0.0)
    return c


def closes(ticker: str, n: int, before: datetime | str | None = None) -> np.ndarray:
    """The closes of the ``n`` bars strictly before ``before``, oldest first (float64 array)."""
    provider: Any = db.current_provider()
    fast = getattr(provider, "last_n_closes", None)
    if fast is not None and isinstance(before, datetime | None):
        db.check_ticker(ticker)
        return fast(ticker, int(n), before)
    bars = db.get_data_for_algorithm(ticker, "last_n_bars", n=n, before_timestamp=before)
    return np.fromiter((b["ohlcv"]["c"] for b in bars), dtype=np.float64, count=len(bars))
