"""SMA crossover: hold the stock while the short average is above the long one.

This is the reference plugin: copy it to your plugin folder, rename the file, change
``run()``. The engine calls ``run`` once a minute while the market is open and checks the
answer (a sell beyond the position or a buy beyond the cash is refused, not executed).
"""

from db import get_data_for_algorithm, get_transactions


class Algorithm:
    """SMA 20/50 crossover: buys when SMA 20 is above SMA 50, sells all when it drops below."""

    display_name = "SMA crossover"  # the name the app shows (else the module name)
    # Parameters: plain class attributes. The app shows them and lets you change them per
    # algorithm (they are set before __init__ runs).
    sma_short = 20
    sma_long = 50
    # Lines the app draws on the price chart: (kind, length); a length may name a parameter.
    indicators = (("sma", "sma_short"), ("sma", "sma_long"))

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.cash, self.shares = initial_capital, 0
        self.seen = 0  # how many of our transactions are already counted in cash/shares

    def run(self, current_time, algo_id):
        # The last sma_long + 1 minute bars strictly before current_time, oldest first.
        bars = get_data_for_algorithm(self.ticker, "last_n_bars", n=self.sma_long + 1,
                                      before_timestamp=current_time)
        if len(bars) < self.sma_long:
            return ("hold", 0)  # not enough history yet
        closes = [b["ohlcv"]["c"] for b in bars]
        short = sum(closes[-self.sma_short:]) / self.sma_short
        long = sum(closes[-self.sma_long:]) / self.sma_long

        # Our cash and position come from our own transactions (the broker's real fills).
        # They only ever grow, so add up just the new ones: a year of trades stays cheap.
        new = get_transactions(algo_id)[self.seen:]
        for t in new:
            amount = t["shares"] * t["price"]
            if t["type"] == "buy":
                self.cash, self.shares = self.cash - amount, self.shares + t["shares"]
            else:
                self.cash, self.shares = self.cash + amount, self.shares - t["shares"]
        self.seen += len(new)
        cash, shares = self.cash, self.shares

        price = closes[-1]
        if short > long and shares == 0:
            # Keep 1% aside: a market order fills a little above the last close.
            buy = int(cash * 0.99 // price)
            return ("buy", buy) if buy > 0 else ("hold", 0)
        if short < long and shares > 0:
            return ("sell", shares)
        return ("hold", 0)
