"""An independent reference: the SMA crossover rule written for backtrader.

backtrader computes the averages (its own SMA indicator), walks the bars, executes orders and
keeps the cash; we only restate the plugin's rule. Fill convention, as in AutoTrader: a
decision at minute t sees the bars before t and fills at the open of bar t. backtrader does
that only with ``cheat_on_open=True`` and the decision and sizing in ``next_open``, where the
indicators still hold the values computed up to bar t-1 and ``close[-1]`` is bar t-1's close.
"""

from __future__ import annotations

from typing import Any

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
