"""Reads another ticker (SPY) beside its own and records what it saw (test plugin)."""

from db import get_data_for_algorithm, get_latest_price

SEEN = []


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker

    def run(self, current_time, algo_id):
        spy = get_data_for_algorithm("SPY", "last_n_bars", n=2, before_timestamp=current_time)
        SEEN.append((current_time, [b["timestamp"] for b in spy], get_latest_price("SPY")))
        return ("hold", 0)
