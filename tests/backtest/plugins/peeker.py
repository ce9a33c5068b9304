"""Asks for bars after its current time and records what it got (test plugin)."""

from datetime import timedelta

from db import get_data_for_algorithm, get_latest_price

SEEN = []


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker

    def run(self, current_time, algo_id):
        future = current_time + timedelta(days=3)
        bars = get_data_for_algorithm(self.ticker, "last_n_bars", n=5, before_timestamp=future)
        none = get_data_for_algorithm(self.ticker, "last_n_bars", n=5)
        SEEN.append((current_time, [b["timestamp"] for b in bars],
                     [b["timestamp"] for b in none], get_latest_price(self.ticker)))
        return ("hold", 0)
