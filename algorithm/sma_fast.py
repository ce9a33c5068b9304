"""SMA crossover on the fast path: numpy closes and the engine's own position and cash.

Same strategy as ``sma_crossover.py``, written with ``algorithm.closes``/``position``/``cash``
instead of the seed functions: no per-bar dicts, no reading the transaction list every minute.
Works in every mode (outside the engine the helpers fall back to the seed functions).
"""

from algorithm import cash, closes, position


class Algorithm:
    """SMA 20/50 crossover (fast path): in the stock while SMA 20 is above SMA 50."""

    display_name = "SMA crossover (fast)"
    sma_short = 20
    sma_long = 50
    # Lines the app draws on the price chart: (kind, length); a length may name a parameter.
    indicators = (("sma", "sma_short"), ("sma", "sma_long"))

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.initial_capital = initial_capital

    def run(self, current_time, algo_id):
        c = closes(self.ticker, self.sma_long, current_time)
        if len(c) < self.sma_long:
            return ("hold", 0)
        short, long = c[-self.sma_short:].mean(), c.mean()
        held = position(algo_id)
        if short > long and held == 0:
            shares = int(cash(algo_id, self.initial_capital) * 0.99 // c[-1])
            return ("buy", shares) if shares > 0 else ("hold", 0)
        if short < long and held > 0:
            return ("sell", held)
        return ("hold", 0)
