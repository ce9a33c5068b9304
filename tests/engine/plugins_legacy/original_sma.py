"""A plugin as the original design wrote it: its own module names for the data functions."""

from database.db_manager import get_data_for_algorithm
from system_databse.system_db_manager import get_transactions


class Algorithm:
    """SMA 5/20 crossover, sized all-in at the last close, as the original plugin did."""

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.initial_capital = initial_capital

    def run(self, current_time, algo_id):
        bars = get_data_for_algorithm(self.ticker, "last_n_bars", n=21,
                                      before_timestamp=current_time)
        if len(bars) < 20:
            return ("hold", 0)
        closes = [b["ohlcv"]["c"] for b in bars]
        short, long_ = sum(closes[-5:]) / 5, sum(closes[-20:]) / 20
        cash, shares = self.initial_capital, 0
        for t in get_transactions(algo_id):
            if t["type"] == "buy":
                cash, shares = cash - t["shares"] * t["price"], shares + t["shares"]
            else:
                cash, shares = cash + t["shares"] * t["price"], shares - t["shares"]
        if short > long_ and shares == 0:
            n = int(cash * 0.99 // closes[-1])
            return ("buy", n) if n > 0 else ("hold", 0)
        if short < long_ and shares > 0:
            return ("sell", shares)
        return ("hold", 0)
