"""SMA 10/30 crossover sizing all-in at the last close, as the original design's plugin does
(test plugin: its buys overdraw the cash by the move to the fill price)."""

from db import get_data_for_algorithm, get_transactions


class Algorithm:
    sma_short = 10
    sma_long = 30

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.capital = initial_capital

    def run(self, current_time, algo_id):
        bars = get_data_for_algorithm(self.ticker, "last_n_bars", n=self.sma_long,
                                      before_timestamp=current_time)
        if len(bars) < self.sma_long:
            return ("hold", 0)
        closes = [b["ohlcv"]["c"] for b in bars]
        short = sum(closes[-self.sma_short:]) / self.sma_short
        long_ = sum(closes) / self.sma_long
        cash, held = self.capital, 0
        for t in get_transactions(algo_id):
            if t["type"] == "buy":
                cash -= t["shares"] * t["price"]
                held += t["shares"]
            else:
                cash += t["shares"] * t["price"]
                held -= t["shares"]
        price = closes[-1]
        if short > long_ and held == 0:
            shares = int(cash // price)
            return ("buy", shares) if shares > 0 else ("hold", 0)
        if short < long_ and held > 0:
            return ("sell", held)
        return ("hold", 0)
