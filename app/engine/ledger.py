"""Each algorithm's virtual sub-account, derived from its transactions.

``cash = initial - buys + sells - commissions``, ``position = bought - sold``; the average cost
is the average-cost method (buys move it, sells do not), so ``realised + unrealised == P&L``
exactly: ``P&L = value - initial`` with ``value = cash + position * last_price``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class Ledger:
    initial_capital: float
    cash: float = 0.0
    position: int = 0
    avg_cost: float | None = None
    realised: float = 0.0
    last_tx_id: int = 0
    trades: int = 0

    def __post_init__(self) -> None:
        if not self.cash and not self.trades:
            self.cash = float(self.initial_capital)

    @classmethod
    def from_transactions(cls, initial_capital: float,
                          transactions: Iterable[Mapping[str, Any]]) -> Ledger:
        led = cls(float(initial_capital))
        for tx in transactions:
            led.apply(tx)
        return led

    def apply(self, tx: Mapping[str, Any]) -> None:
        """Add one transaction (``type``, ``shares``, ``price``, optional ``commission``)."""
        shares = int(tx["shares"])
        price = float(tx["price"])
        commission = float(tx.get("commission") or 0.0)
        tx_id = tx.get("id")
        if tx_id is not None:
            self.last_tx_id = max(self.last_tx_id, int(tx_id))
        self.trades += 1
        self.cash -= commission
        self.realised -= commission
        if tx["type"] == "buy":
            cost_before = (self.avg_cost or 0.0) * self.position
            self.position += shares
            self.cash -= shares * price
            self.avg_cost = (cost_before + shares * price) / self.position if self.position else None
        else:
            self.cash += shares * price
            basis = self.avg_cost if self.avg_cost is not None else price
            self.realised += (price - basis) * shares
            self.position -= shares
            if self.position == 0:
                self.avg_cost = None
            elif self.position < 0:
                # Never happens through the engine (sells are checked); keep arithmetic honest.
                logger.warning("ledger went short (%d shares)", self.position)
                self.avg_cost = price

    # --- derived -------------------------------------------------------------------------
    def value(self, last_price: float | None) -> float:
        price = last_price if last_price is not None else (self.avg_cost or 0.0)
        return self.cash + self.position * price

    def unrealised(self, last_price: float | None) -> float:
        if not self.position or last_price is None or self.avg_cost is None:
            return 0.0
        return (last_price - self.avg_cost) * self.position

    def pnl(self, last_price: float | None) -> float:
        return self.value(last_price) - self.initial_capital

    def pnl_pct(self, last_price: float | None) -> float:
        return 100.0 * self.pnl(last_price) / self.initial_capital if self.initial_capital else 0.0

    def snapshot(self, last_price: float | None) -> dict[str, Any]:
        return {
            "cash": self.cash, "position": self.position, "avg_cost": self.avg_cost,
            "value": self.value(last_price), "pnl": self.pnl(last_price),
            "pnl_pct": self.pnl_pct(last_price), "realised": self.realised,
            "unrealised": self.unrealised(last_price),
        }
