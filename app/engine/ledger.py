"""Each algorithm's virtual sub-account, derived from its transactions.

``cash = initial - buys + sells - commissions``, ``position = bought - sold``; the average cost
is the average-cost method (buys move it, sells do not), so ``realised + unrealised == P&L``
exactly: ``P&L = value - initial`` with ``value = cash + position * last_price``.

Corporate actions (``algo_events``, db/corporate.py) come in between transactions: a split
sets the whole-share count and the average cost (the cost basis is kept), the cash paid in lieu
of a fraction sells that fraction at its price, a cash dividend is cash and realised income.
A split leaves ``value``, ``P&L`` and ``realised + unrealised`` unchanged at the adjusted
price; an exact split (no fraction) leaves realised and unrealised each unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


def marked_value(cash: float, position: int, avg_cost: float | None,
                 last_price: float | None) -> float:
    """An algorithm's value at ``last_price`` (its average cost while no price is known): the
    one valuation the engine, the cards between two engine reads, and reports share."""
    price = last_price if last_price is not None else (avg_cost or 0.0)
    return cash + position * price


def pnl_percent(pnl: float, initial_capital: float) -> float:
    return 100.0 * pnl / initial_capital if initial_capital else 0.0


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

    last_event_id: int = 0

    @classmethod
    def from_transactions(cls, initial_capital: float,
                          transactions: Iterable[Mapping[str, Any]],
                          events: Iterable[Mapping[str, Any]] = ()) -> Ledger:
        """Replay transactions (by id) and corporate-action events; an event comes after
        every transaction with ``id <= after_tx_id`` (it was applied then)."""
        led = cls(float(initial_capital))
        pending = sorted(events, key=lambda e: (int(e.get("after_tx_id") or 0), int(e["id"])))
        i = 0
        for tx in transactions:
            while i < len(pending) and int(tx["id"]) > int(pending[i].get("after_tx_id") or 0):
                led.apply_event(pending[i])
                i += 1
            led.apply(tx)
        for ev in pending[i:]:
            led.apply_event(ev)
        return led

    def apply_event(self, ev: Mapping[str, Any]) -> None:
        """Add one corporate-action event (``type``: split, cash_in_lieu, dividend, action)."""
        ev_id = ev.get("id")
        if ev_id is not None:
            self.last_event_id = max(self.last_event_id, int(ev_id))
        kind = ev["type"]
        if kind == "split":
            self.position += int(ev.get("shares") or 0)
            avg = ev.get("avg_cost")
            self.avg_cost = (float(avg) if avg is not None else self.avg_cost) \
                if self.position else None
        elif kind == "cash_in_lieu":
            cash = float(ev.get("cash") or 0.0)
            basis = float(ev.get("avg_cost") or 0.0) * float(ev.get("fraction") or 0.0)
            self.cash += cash
            self.realised += cash - basis
        elif kind == "dividend":
            cash = float(ev.get("cash") or 0.0)
            self.cash += cash
            self.realised += cash

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
        return marked_value(self.cash, self.position, self.avg_cost, last_price)

    def unrealised(self, last_price: float | None) -> float:
        if not self.position or last_price is None or self.avg_cost is None:
            return 0.0
        return (last_price - self.avg_cost) * self.position

    def pnl(self, last_price: float | None) -> float:
        return self.value(last_price) - self.initial_capital

    def pnl_pct(self, last_price: float | None) -> float:
        return pnl_percent(self.pnl(last_price), self.initial_capital)

    def snapshot(self, last_price: float | None) -> dict[str, Any]:
        return {
            "cash": self.cash, "position": self.position, "avg_cost": self.avg_cost,
            "value": self.value(last_price), "pnl": self.pnl(last_price),
            "pnl_pct": self.pnl_pct(last_price), "realised": self.realised,
            "unrealised": self.unrealised(last_price),
        }
