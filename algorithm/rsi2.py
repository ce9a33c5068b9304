"""RSI(2) mean reversion (Connors): buy a short, sharp dip in an uptrend, sell the bounce.

In the stock when the price is above its long average (the trend) and the 2-bar RSI has
fallen below ``oversold``; out when the price closes back above its short average. The RSI
here is Cutler's (simple sums of the last ``rsi_period`` gains and losses), so it depends only
on the bars it looks at. Vectorised twin: ``app/backtest/vectorized.py`` ``rsi2``.
"""

import numpy as np

from algorithm import cash, closes, position


def rsi(c, period):
    """Cutler's RSI of the last ``period`` changes of ``c`` (50 when nothing moved)."""
    d = np.diff(c[-(period + 1):])
    up, down = d[d > 0].sum(), -d[d < 0].sum()
    return 50.0 if up + down == 0 else 100.0 * up / (up + down)


class Algorithm:
    """RSI(2) mean reversion: buys an oversold dip above the trend SMA, sells above SMA 5."""

    display_name = "RSI(2) reversion"
    rsi_period = 2
    oversold = 10.0
    trend_sma = 200
    exit_sma = 5
    indicators = (("sma", "trend_sma"), ("sma", "exit_sma"))

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.initial_capital = initial_capital

    def run(self, current_time, algo_id):
        need = max(self.trend_sma, self.exit_sma, self.rsi_period + 1)
        c = closes(self.ticker, need, current_time)
        if len(c) < need:
            return ("hold", 0)
        last, held = c[-1], position(algo_id)
        if held == 0 and last > c[-self.trend_sma:].sum() / self.trend_sma \
                and rsi(c, self.rsi_period) < self.oversold:
            shares = int(cash(algo_id, self.initial_capital) * 0.99 // last)
            return ("buy", shares) if shares > 0 else ("hold", 0)
        if held > 0 and last > c[-self.exit_sma:].sum() / self.exit_sma:
            return ("sell", held)
        return ("hold", 0)
