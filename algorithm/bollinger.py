"""Bollinger band reversion: buy a close below the lower band, sell at the middle band.

Bands: the ``window``-bar average of the closes +/- ``width`` standard deviations (population).
Vectorised twin: ``app/backtest/vectorized.py`` ``bollinger``.
"""

import numpy as np

from algorithm import cash, closes, position


class Algorithm:
    """Bollinger reversion: buys below the lower band (SMA 20 - 2 sd), sells at the SMA."""

    display_name = "Bollinger reversion"
    window = 20
    width = 2.0
    indicators = (("sma", "window"),)  # the middle band

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.initial_capital = initial_capital

    def run(self, current_time, algo_id):
        c = closes(self.ticker, self.window, current_time)
        if len(c) < self.window:
            return ("hold", 0)
        mid = c.sum() / self.window
        sd = np.sqrt(((c - mid) ** 2).sum() / self.window)
        last, held = c[-1], position(algo_id)
        if held == 0 and last < mid - self.width * sd:
            shares = int(cash(algo_id, self.initial_capital) * 0.99 // last)
            return ("buy", shares) if shares > 0 else ("hold", 0)
        if held > 0 and last > mid:
            return ("sell", held)
        return ("hold", 0)
