"""Tries to store a bar every minute (test plugin)."""

from db import insert_minute_data


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.stored = []

    def run(self, current_time, algo_id):
        bar = {"timestamp": current_time.isoformat(),
               "ohlcv": {"o": 1.0, "h": 1.0, "l": 1.0, "c": 1.0, "v": 1}}
        self.stored.append(insert_minute_data(self.ticker, [bar]))
        return ("hold", 0)
