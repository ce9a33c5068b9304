"""The simulated fill price, as ``app.broker.simulated.SimulatedBroker`` computes it.

A market order fills at a base price moved against the trader by ``slippage_bps`` and rounded
to 1/10000 of a dollar. The backtest's base price is the OPEN of the bar of the decision
minute (``fill="open"``, the broker's ``next_open`` rule: the algorithm saw bars up to t-1 and
its order executes at t's open) or the last close it saw (``fill="close"``, the broker's
default ``last_close`` rule used in demo mode).
"""

from __future__ import annotations

FILL_RULES = ("open", "close")


def fill_price(side: str, base: float, slippage_bps: float) -> float:
    k = slippage_bps / 10_000.0
    return round(base * (1 + k) if side == "buy" else base * (1 - k), 4)
