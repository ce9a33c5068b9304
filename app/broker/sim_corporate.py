"""Corporate actions of the simulated market (demo, tests): a schedule kept in the system DB.

``schedule_split`` puts a split on the schedule (the demo option ``demo.splits`` and tests);
the engine reads it like Alpaca's announcements, and ``settle`` makes the simulated broker
split its own position (whole shares, cash in lieu of a fraction) on the ex-date, the way
Alpaca does before the open, so the position watch agrees with the algorithms afterwards.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import db.corporate as dbc
from db.market import MarketStore, check_ticker
from db.system import SystemStore

logger = logging.getLogger(__name__)


def parse_split(text: str) -> tuple[str, str, float, float]:
    """``TICKER:YYYY-MM-DD:RATIO`` -> (ticker, ex_date, new_rate, old_rate). RATIO is
    ``10`` or ``10:1`` / ``10-1`` / ``10/1`` (10 new shares for 1) or ``1:10`` (reverse)."""
    parts = text.strip().split(":")
    if len(parts) not in (3, 4):
        raise ValueError(f"{text!r}: expected TICKER:YYYY-MM-DD:RATIO (e.g. NVDA:2024-06-10:10)")
    ticker, day = check_ticker(parts[0].strip().upper()), parts[1].strip()
    date.fromisoformat(day)
    ratio = ":".join(parts[2:]).replace("-", ":").replace("/", ":")
    nums = ratio.split(":")
    try:
        new, old = (float(nums[0]), 1.0) if len(nums) == 1 else (float(nums[0]), float(nums[1]))
    except ValueError:
        raise ValueError(f"{text!r}: the ratio must be a number or NEW:OLD") from None
    if not (new > 0 and old > 0) or new == old or not all(x < 1e6 for x in (new, old)):
        raise ValueError(f"{text!r}: the ratio must be two positive numbers that differ")
    return ticker, day, new, old


def split_action(ticker: str, ex_date: str, new_rate: float, old_rate: float) -> dict[str, Any]:
    kind = "forward_split" if new_rate > old_rate else "reverse_split"
    return {"id": f"sim-{kind}-{ticker}-{ex_date}", "ticker": ticker, "kind": kind,
            "ex_date": ex_date, "old_rate": float(old_rate), "new_rate": float(new_rate)}


class SimCorporateActions:
    def __init__(self, system: SystemStore, market: MarketStore) -> None:
        self.system, self.market = system, market

    def schedule_split(self, ticker: str, ex_date: str, new_rate: float,
                       old_rate: float = 1.0) -> dict[str, Any]:
        act = split_action(ticker, ex_date, new_rate, old_rate)
        dbc.sim_schedule(self.system, act)
        logger.info("simulated market: %s %g-for-%g split on %s", ticker, new_rate, old_rate,
                    ex_date)
        return act

    def schedule(self, action: dict[str, Any]) -> None:
        dbc.sim_schedule(self.system, action)

    def get_corporate_actions(self, symbols: list[str], start: date,
                              end: date) -> list[dict[str, Any]]:
        rows = dbc.sim_actions(self.system, start.isoformat(), end.isoformat(), symbols)
        return [{k: r.get(k) for k in ("id", "ticker", "kind", "ex_date", "old_rate",
                                       "new_rate", "rate", "detail")} for r in rows]

    def settle(self, action: dict[str, Any]) -> None:
        """The broker's side of a due action (once): split or pay on its own books."""
        if action["kind"] in dbc.SPLIT_KINDS:
            ratio = float(action["new_rate"]) / float(action["old_rate"])
            last = self.market.latest_price(action["ticker"],
                                            before_ts=dbc.ex_epoch(action["ex_date"]))
            if last is not None and not dbc.split_applied_to_bars(self.market, action["id"]):
                last /= ratio
            dbc.sim_settle_split(self.system, action["id"], action["ticker"], ratio, last)
        elif action["kind"] == "cash_dividend":
            dbc.sim_settle_dividend(self.system, action["id"], action["ticker"],
                                    float(action.get("rate") or 0.0))
