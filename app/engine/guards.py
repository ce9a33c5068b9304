"""Risk guards: limits per algorithm and per account, checked by the tick planner.

Pure bookkeeping, no I/O: the engine core calls these under its lock with the minute's prices
and acts on the answers (stop an algorithm, stop all, refuse an order). The state a guard
needs across restarts (each algorithm's value at the day's start and its peak value) is
serialised with ``GuardBook.dump`` into the same DB transaction as the tick's intents.

Defaults (``RiskLimits()``), chosen so a normal strategy never meets them and a runaway one
is stopped within a day:

- an algorithm that lost 10 % of its capital since the day's start stops;
- an algorithm 25 % below its peak value stops;
- an algorithm that placed 100 orders in a day stops;
- no per-order dollar cap (0 = off): a buy is already limited to the algorithm's cash;
- the whole account (the sum of all algorithms' values) down 5 % on the day: stop all;
- buys of one minute worth more than 100 % of the capital of all running algorithms are
  refused (a loop bug cannot spend the account twice in a minute);
- sells are never refused by the minute budget or the per-order value cap, and a sell never
  trips the orders-per-day limit (only a buy past it stops the algorithm): those limits cap
  buying; a sale only lowers the risk, and a stop-loss or a guard's sale must always leave.
  A sale is still bounded by the shares the algorithm holds.
- a broker refusal: that algorithm's orders wait 5 minutes; 3 refusals in a row stop it;
- a guard stop keeps the position (``on_guard_stop = "keep"``; "sell" sells it at market).

The limits come from the config's ``[risk]``; they can be changed while running (Settings,
``autotrader guards set``) through ``guard_edit.py``, which stores the change and swaps
``GuardBook.limits`` (``base`` keeps the config's values).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

STOP_ACTIONS = ("keep", "sell")


@dataclass(frozen=True)
class RiskLimits:
    algo_max_daily_loss: float = 0.0  # dollars; 0 = off
    algo_max_daily_loss_pct: float = 10.0  # % of the algorithm's capital; 0 = off
    algo_max_drawdown_pct: float = 25.0  # % below its peak value; 0 = off
    algo_max_order_value: float = 0.0  # dollars per order; 0 = off
    algo_max_orders_per_day: int = 100  # 0 = off
    account_max_daily_loss: float = 0.0  # dollars; 0 = off
    account_max_daily_loss_pct: float = 5.0  # % of all algorithms' value at the day's start
    account_max_minute_order_value: float = 0.0  # dollars per minute; 0 = off
    account_max_minute_order_pct: float = 100.0  # % of running algorithms' capital; 0 = off
    on_guard_stop: str = "keep"  # keep | sell
    reject_cooldown_minutes: int = 5
    max_rejections: int = 3

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, int | float) and not isinstance(v, bool) and not v >= 0:
                raise ValueError(f"risk.{f.name} must be zero or more, got {v!r}")
        if self.on_guard_stop not in STOP_ACTIONS:
            raise ValueError(f"risk.on_guard_stop must be keep or sell, got {self.on_guard_stop!r}")
        if self.max_rejections < 1:
            raise ValueError("risk.max_rejections must be at least 1")

    @classmethod
    def from_settings(cls, section: Any) -> RiskLimits:
        """From the config's ``[risk]`` section (any object with these attribute names)."""
        if section is None:
            return cls()
        names = {f.name for f in fields(cls)}
        return cls(**{n: getattr(section, n) for n in names if hasattr(section, n)})

    @property
    def sell_on_stop(self) -> bool:
        return self.on_guard_stop == "sell"


def _money(x: float) -> str:
    return f"${x:,.2f}"


def _daily_loss(loss: float, base: float, limit: float, limit_pct: float,
                of: str = "") -> str | None:
    """Today's ``loss`` described with the limit it passed (``limit`` in dollars, or
    ``limit_pct`` % of ``base``; 0 = no limit), or None when it passed neither."""
    if limit and loss > limit:
        return f"{_money(loss)} today (limit {_money(limit)})"
    if limit_pct and base > 0 and loss > base * limit_pct / 100.0:
        return (f"{_money(loss)} today, {100 * loss / base:.1f} %{of} "
                f"(limit {limit_pct:g} %)")
    return None


@dataclass
class GuardBook:
    """Per-day baselines: each algorithm's value at the day's first tick and its peak."""

    limits: RiskLimits = field(default_factory=RiskLimits)
    # The config's limits, before changes made while running (guard_edit.py); None: same.
    base: RiskLimits | None = None
    day: str = ""
    day_start: dict[int, float] = field(default_factory=dict)
    peak: dict[int, float] = field(default_factory=dict)
    orders_today: dict[int, int] = field(default_factory=dict)
    account_stopped: str = ""  # the day the account guard fired ("" = not today)
    # What holds an algorithm back, kept across restarts (the engine's ``_persist_holds``):
    # algo id -> {"rejections": n, "cooldown_until": ISO minute, "paused": why}, and the
    # position differences the user accepted by resuming (ticker -> shares).
    holds: dict[int, dict[str, Any]] = field(default_factory=dict)
    acked: dict[str, float] = field(default_factory=dict)

    def dump(self) -> str:
        return json.dumps({"day": self.day, "day_start": self.day_start, "peak": self.peak,
                           "orders_today": self.orders_today,
                           "account_stopped": self.account_stopped,
                           "holds": self.holds, "acked": self.acked})

    def load(self, text: str | None) -> None:
        if not text:
            return
        try:
            d = json.loads(text)
            self.day = str(d.get("day", ""))
            self.day_start = {int(k): float(v) for k, v in d.get("day_start", {}).items()}
            self.peak = {int(k): float(v) for k, v in d.get("peak", {}).items()}
            self.orders_today = {int(k): int(v) for k, v in d.get("orders_today", {}).items()}
            self.account_stopped = str(d.get("account_stopped", ""))
            self.holds = {int(k): dict(v) for k, v in d.get("holds", {}).items()
                          if isinstance(v, dict)}
            self.acked = {str(k): float(v) for k, v in d.get("acked", {}).items()}
        except (ValueError, TypeError, AttributeError):
            pass  # a damaged record only resets today's baselines

    def roll(self, day: str, values: dict[int, float]) -> None:
        """Start of a new day: every baseline is the value now."""
        if day != self.day:
            self.day = day
            self.day_start = dict(values)
            self.orders_today = {}
            self.account_stopped = ""
        for k, v in values.items():
            self.day_start.setdefault(k, v)
            self.peak[k] = max(self.peak.get(k, v), v)

    def reset(self, algo_id: int, value: float) -> None:
        """A resumed algorithm starts its loss and drawdown counts again from here."""
        self.day_start[algo_id] = value
        self.peak[algo_id] = value

    def check_algo(self, algo_id: int, capital: float, value: float) -> str | None:
        """Why this algorithm must stop now, or None."""
        lim = self.limits
        start = self.day_start.get(algo_id, value)
        lost = _daily_loss(start - value, capital, lim.algo_max_daily_loss,
                           lim.algo_max_daily_loss_pct, " of its capital")
        if lost:
            return f"risk guard: lost {lost}"
        peak = self.peak.get(algo_id, value)
        if lim.algo_max_drawdown_pct and peak > 0 \
                and peak - value > peak * lim.algo_max_drawdown_pct / 100.0:
            return (f"risk guard: {100 * (peak - value) / peak:.1f} % below its peak value "
                    f"{_money(peak)} (limit {lim.algo_max_drawdown_pct:g} %)")
        return None

    def check_account(self, values: dict[int, float]) -> str | None:
        """Why every algorithm must stop now (the account's daily loss), or None."""
        lim = self.limits
        if self.account_stopped == self.day:
            return None
        start = sum(self.day_start.get(k, v) for k, v in values.items())
        lost = _daily_loss(start - sum(values.values()), start, lim.account_max_daily_loss,
                           lim.account_max_daily_loss_pct)
        if lost:
            return f"account risk guard: the algorithms lost {lost}; all stopped"
        return None

    def check_order(self, algo_id: int, order_value: float, side: str = "buy") -> str | None:
        """Why this algorithm must stop instead of placing an order of ``order_value``.
        Sells are never stopped here (module doc)."""
        if side == "sell":
            return None
        lim = self.limits
        if lim.algo_max_order_value and order_value > lim.algo_max_order_value + 1e-9:
            return (f"risk guard: an order worth {_money(order_value)} is above the limit "
                    f"{_money(lim.algo_max_order_value)} per order")
        n = self.orders_today.get(algo_id, 0)
        if lim.algo_max_orders_per_day and n >= lim.algo_max_orders_per_day:
            return (f"risk guard: {n} orders today, the daily limit "
                    f"{lim.algo_max_orders_per_day}")
        return None

    def minute_budget(self, running_capital: float) -> float | None:
        """The most this minute's buys may be worth together (None = no limit); sells do
        not count against it."""
        lim = self.limits
        caps = []
        if lim.account_max_minute_order_value:
            caps.append(lim.account_max_minute_order_value)
        if lim.account_max_minute_order_pct and running_capital > 0:
            caps.append(running_capital * lim.account_max_minute_order_pct / 100.0)
        return min(caps) if caps else None

    def count_order(self, algo_id: int) -> None:
        self.orders_today[algo_id] = self.orders_today.get(algo_id, 0) + 1
