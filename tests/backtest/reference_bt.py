"""An independent reference: the SMA crossover and the four templates written for backtrader.

backtrader computes the averages (its own SMA indicator), walks the bars, executes orders and
keeps the cash; we only restate the plugin's rule. Fill convention, as in AutoTrader: a
decision at minute t sees the bars before t and fills at the open of bar t. backtrader does
that only with ``cheat_on_open=True`` and the decision and sizing in ``next_open``, where the
indicators still hold the values computed up to bar t-1 and ``close[-1]`` is bar t-1's close.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import backtrader as bt
import pandas as pd

from app.backtest.bars import Bars


class SmaCrossover(bt.Strategy):
    params = (("short", 20), ("long", 50))

    def __init__(self) -> None:
        self.sma_s = bt.indicators.SMA(self.data.close, period=self.p.short)
        self.sma_l = bt.indicators.SMA(self.data.close, period=self.p.long)
        self.fills: list[dict[str, Any]] = []

    def next_open(self) -> None:
        short, long_ = self.sma_s[0], self.sma_l[0]  # not yet recomputed: up to bar t-1
        held = self.position.size
        if short > long_ and held == 0:
            qty = int(self.broker.getcash() * 0.99 // self.data.close[-1])
            if qty > 0:
                self.buy(size=qty)
        elif short < long_ and held > 0:
            self.sell(size=held)

    def notify_order(self, order: bt.Order) -> None:
        if order.status == order.Completed:
            self.fills.append({
                "time": bt.num2date(order.executed.dt).replace(tzinfo=None),
                "type": "buy" if order.isbuy() else "sell",
                "shares": abs(int(order.executed.size)), "price": order.executed.price})
        elif order.status in (order.Margin, order.Rejected, order.Canceled):
            raise AssertionError(f"backtrader refused an order: {order.getstatusname()}")


def frame(bars: Bars) -> pd.DataFrame:
    return pd.DataFrame({"open": bars.o, "high": bars.h, "low": bars.l, "close": bars.c,
                         "volume": bars.v}, index=pd.to_datetime(bars.ts, unit="s"))


def run_reference(bars: Bars, capital: float, short: int = 20,
                  long_: int = 50) -> tuple[list[dict[str, Any]], float]:
    """(fills, final value) of the rule over ``bars`` in backtrader, no costs."""
    cerebro = bt.Cerebro(cheat_on_open=True, stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame(bars)))
    cerebro.addstrategy(SmaCrossover, short=short, long=long_)
    cerebro.broker.setcash(capital)
    cerebro.broker.setcommission(commission=0.0)
    strategy = cerebro.run()[0]
    return strategy.fills, cerebro.broker.getvalue()


# --- The templates (algorithm/rsi2.py, bollinger.py, opening_range.py, momentum.py) -----------
# Each class restates its plugin's rule; backtrader walks the bars, fills at bar t's open
# (``cheat_on_open``), keeps cash and position and, where it has one, computes the indicator.
# In ``next_open`` a line's [-1] is bar t-1 (the last bar the plugin sees at minute t) and an
# indicator's [0] still holds its value up to bar t-1.

NEW_YORK = ZoneInfo("America/New_York")


class _Template(bt.Strategy):
    def __init__(self) -> None:
        self.fills: list[dict[str, Any]] = []

    def seen(self) -> int:
        """Bars before the current one: what the plugin sees at this minute."""
        return len(self.data) - 1

    def buy_all(self, price: float) -> None:
        qty = int(self.broker.getcash() * 0.99 // price)
        if qty > 0:
            self.buy(size=qty)

    def sell_all(self) -> None:
        if self.position.size > 0:
            self.sell(size=self.position.size)

    notify_order = SmaCrossover.notify_order


class Rsi2(_Template):
    """In above SMA(trend) when Cutler's RSI(2) < oversold; out above SMA(exit)."""

    params = (("rsi_period", 2), ("oversold", 10.0), ("trend_sma", 200), ("exit_sma", 5))

    def __init__(self) -> None:
        super().__init__()
        self.trend = bt.indicators.SMA(self.data.close, period=self.p.trend_sma)
        self.exit = bt.indicators.SMA(self.data.close, period=self.p.exit_sma)
        # Cutler's RSI: simple averages of the up and down moves; RSI_Safe gives 100 when
        # nothing fell and 50 when nothing moved (the plugin: 100 and 50).
        self.rsi = bt.indicators.RSI_Safe(self.data.close, period=self.p.rsi_period,
                                          movav=bt.indicators.SMA)

    def next_open(self) -> None:
        if self.seen() < max(self.p.trend_sma, self.p.exit_sma, self.p.rsi_period + 1):
            return
        last = self.data.close[-1]
        if self.position.size == 0 and last > self.trend[0] and self.rsi[0] < self.p.oversold:
            self.buy_all(last)
        elif self.position.size > 0 and last > self.exit[0]:
            self.sell_all()


class Bollinger(_Template):
    """In below the lower band (SMA - width x population sd), out above the SMA."""

    params = (("window", 20), ("width", 2.0))

    def __init__(self) -> None:
        super().__init__()
        self.bands = bt.indicators.BollingerBands(self.data.close, period=self.p.window,
                                                  devfactor=self.p.width)

    def next_open(self) -> None:
        if self.seen() < self.p.window:
            return
        last = self.data.close[-1]
        if self.position.size == 0 and last < self.bands.bot[0]:
            self.buy_all(last)
        elif self.position.size > 0 and last > self.bands.mid[0]:
            self.sell_all()


def _ny(data: Any, ago: int) -> datetime:
    return data.datetime.datetime(ago).replace(tzinfo=UTC).astimezone(NEW_YORK)


class OpeningRange(_Template):
    """Long above the high of the session's first ``range_minutes``; out below its low, at
    ``exit_minute`` after 9:30, or in the first minutes of the next session."""

    params = (("range_minutes", 30), ("exit_minute", 375))

    def __init__(self) -> None:
        super().__init__()
        self.day: Any = None
        self.range: tuple[float, float] | None = None

    def next_open(self) -> None:
        now = _ny(self.data, 0)
        opened = now.replace(hour=9, minute=30, second=0, microsecond=0)
        minute = (now - opened).total_seconds() // 60
        held = self.position.size
        if minute < self.p.range_minutes:
            self.sell_all()
            return
        if self.day != now.date():  # today's range, from the bars before this minute
            self.day, self.range = now.date(), None
            end = opened + timedelta(minutes=self.p.range_minutes)
            highs, lows = [], []
            for ago in range(-1, -self.seen() - 1, -1):
                t = _ny(self.data, ago)
                if t < opened:
                    break
                if t < end:
                    highs.append(self.data.high[ago])
                    lows.append(self.data.low[ago])
            if highs:
                self.range = (max(highs), min(lows))
        if self.range is None or not self.seen():
            self.sell_all()
            return
        high, low = self.range
        price = self.data.close[-1]
        if held == 0 and minute < self.p.exit_minute and price > high:
            self.buy_all(price)
        elif held > 0 and (minute >= self.p.exit_minute or price < low):
            self.sell_all()


class Momentum(_Template):
    """At each session's first bar: in while the close-to-close change over the last
    ``lookback_days`` sessions is above ``threshold``, out otherwise."""

    params = (("lookback_days", 5), ("threshold", 0.0))

    def __init__(self) -> None:
        super().__init__()
        self.session_close: dict[Any, float] = {}  # filled in next(), after each bar
        self.day: Any = None

    def next(self) -> None:
        self.session_close[self.data.datetime.date(0)] = self.data.close[0]

    def next_open(self) -> None:
        today = self.data.datetime.date(0)
        if today == self.day:
            return
        self.day = today
        daily = [c for d, c in sorted(self.session_close.items()) if d < today]
        if len(daily) <= self.p.lookback_days:
            return
        change = daily[-1] / daily[-1 - self.p.lookback_days] - 1.0
        if change > self.p.threshold and self.position.size == 0:
            self.buy_all(daily[-1])
        elif change <= self.p.threshold:
            self.sell_all()


TEMPLATES: dict[str, type[bt.Strategy]] = {
    "rsi2": Rsi2, "bollinger": Bollinger, "opening_range": OpeningRange, "momentum": Momentum}


def run_template(name: str, bars: Bars, capital: float,
                 **params: Any) -> tuple[list[dict[str, Any]], float]:
    """(fills, final value) of template ``name``'s rule over ``bars`` in backtrader, no costs."""
    cerebro = bt.Cerebro(cheat_on_open=True, stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame(bars)))
    cerebro.addstrategy(TEMPLATES[name], **params)
    cerebro.broker.setcash(capital)
    cerebro.broker.setcommission(commission=0.0)
    strategy = cerebro.run()[0]
    return strategy.fills, cerebro.broker.getvalue()
