"""The one fill model: how a simulated market order fills, for the demo's simulated broker,
the backtest's fast replay and its ``--exact`` path alike (so the three cannot drift apart).

- **Price rule.** A market order fills at a *base price*: ``"open"`` (the broker's
  ``next_open``): the open of the bar starting in the order's minute, falling back to the last
  close when that minute has no bar; ``"close"`` (the broker's ``last_close``, the demo's
  default): the close of the last bar before the order's minute, the price the algorithm saw.
- **Slippage.** The base moves against the trader by ``slippage_bps`` (buy: up, sell: down),
  rounded to 1/10000 of a dollar.
- **Commission.** ``commission_per_share`` per filled share, paid from cash.
- **Refusals.** No price: refused. A sell beyond the shares held: refused (no short selling).
  A buy whose cost (fill price x shares + commission) exceeds the cash the payer can use:
  refused. Which cash that is decides whether a buy may overdraw the *algorithm's* cash:
  live and in the demo the payer is the whole account, so a buy the engine accepted at
  decision time (its cost at the last close within the algorithm's cash) fills even when the
  open or the slippage make it a few dollars dearer, and the algorithm's cash goes slightly
  negative. ``strict_cash`` makes the algorithm's own cash the limit (the account holds nothing
  else), which refuses those buys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PRICE_RULES = ("open", "close")
EPS = 1e-9


def fill_price(side: str, base: float, slippage_bps: float) -> float:
    """``base`` moved against the trader by ``slippage_bps``, rounded to 1/10000 $."""
    k = slippage_bps / 10_000.0
    return round(base * (1 + k) if side == "buy" else base * (1 - k), 4)


def refusal(side: str, qty: int, price: float | None, commission: float, cash: float,
            held: int) -> str:
    """Why the broker refuses this fill ('' = it fills). ``cash`` is what the payer can use."""
    if price is None or not price > 0 or not math.isfinite(price):
        return "no market price"
    if side == "sell" and qty > held:
        return f"insufficient qty: selling {qty}, holding {held} (no short selling)"
    if side == "buy" and qty * price + commission > cash + EPS:
        return f"insufficient buying power ({qty * price + commission:,.2f} > {cash:,.2f})"
    return ""


@dataclass(frozen=True)
class FillModel:
    rule: str = "open"
    slippage_bps: float = 0.0
    commission_per_share: float = 0.0
    strict_cash: bool = False

    def __post_init__(self) -> None:
        if self.rule not in PRICE_RULES:
            raise ValueError(f"unknown fill rule {self.rule!r} (use {' or '.join(PRICE_RULES)})")
        for name in ("slippage_bps", "commission_per_share"):
            x = getattr(self, name)
            if not (math.isfinite(x) and x >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {x!r}")

    def base(self, open_here: float | None, last_close: float | None) -> float | None:
        """The base price from the bar of the order's minute (None: no bar) and the last
        close before it."""
        if self.rule == "open" and open_here is not None:
            return open_here
        return last_close

    def price(self, side: str, base: float) -> float:
        return fill_price(side, base, self.slippage_bps)

    def commission(self, qty: int) -> float:
        return qty * self.commission_per_share

    def payer_cash(self, algorithm_cash: float) -> float:
        """The cash a buy is checked against in a one-algorithm backtest: the algorithm's own
        with ``strict_cash``, else the account's (unbounded here: the engine's decision check
        already held the buy to the algorithm's cash at the last close)."""
        return algorithm_cash if self.strict_cash else math.inf

    def refusal(self, side: str, qty: int, price: float | None, cash: float, held: int) -> str:
        return refusal(side, qty, price, self.commission(qty), cash, held)
