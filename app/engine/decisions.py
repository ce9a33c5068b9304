"""Checking what a plugin's ``run()`` returned, without running any of the plugin's code.

Only exact built-in types are inspected (``type(x) is tuple``, not ``isinstance``), so a
returned object with a hostile ``__eq__`` or ``__len__`` never executes on the engine's thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

ACTIONS = ("buy", "sell", "hold")


class DecisionRefused(ValueError):
    """The decision is not acceptable; the message is what the card shows."""


@dataclass(frozen=True)
class Decision:
    action: str
    shares: int


def _shares(value: Any) -> int:
    if type(value) is int:
        n = value
    elif type(value) is float or isinstance(value, np.floating):
        f = float(value)
        if math.isnan(f):
            raise DecisionRefused("share count is NaN")
        if not math.isfinite(f):
            raise DecisionRefused("share count is infinite")
        if f != int(f):
            raise DecisionRefused(f"share count {f!r} is not a whole number")
        n = int(f)
    elif isinstance(value, np.integer):  # numpy integers (a bool is neither)
        n = int(value)
    else:
        raise DecisionRefused(f"share count must be a whole number, got {type(value).__name__}")
    if n < 0:
        raise DecisionRefused(f"share count {n} is negative")
    return n


def parse_decision(raw: Any) -> Decision:
    """``('buy', n)``, ``('sell', n)`` or ``('hold', 0)`` (a list is accepted too)."""
    if type(raw) not in (tuple, list):
        shown = "None" if raw is None else type(raw).__name__
        raise DecisionRefused(f"run() must return ('buy'|'sell'|'hold', shares), got {shown}")
    if len(raw) != 2:
        raise DecisionRefused(f"run() returned {len(raw)} values instead of 2")
    action, shares = raw
    if type(action) is not str or action not in ACTIONS:  # exactly lowercase, no spaces
        shown = repr(action) if type(action) in (str, int, float) else type(action).__name__
        raise DecisionRefused(f"unknown action {shown[:40]} (expected buy, sell or hold)")
    if action == "hold":
        return Decision("hold", 0)
    n = _shares(shares)
    if n == 0:
        return Decision("hold", 0)
    return Decision(action, n)


def check_against_ledger(decision: Decision, cash: float, position: int,
                         last_price: float | None) -> None:
    """Refuse a sell beyond the position or a buy beyond the cash (at the last price)."""
    if decision.action == "sell" and decision.shares > position:
        raise DecisionRefused(f"sell {decision.shares} refused: holds {position}")
    if decision.action == "buy":
        if last_price is None:
            raise DecisionRefused("buy refused: no price for this ticker yet")
        cost = decision.shares * last_price
        if cost > cash + 1e-6:
            raise DecisionRefused(
                f"buy {decision.shares} refused: costs {cost:,.2f} at {last_price:,.2f}, "
                f"cash is {cash:,.2f}"
            )
