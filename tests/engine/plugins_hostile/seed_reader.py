"""A seed-style plugin: reads bars and its transactions through ``db``; buys 1 once."""

import os

from db import get_data_for_algorithm, get_transactions


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker

    def run(self, current_time, algo_id):
        bars = get_data_for_algorithm(self.ticker, "last_n_bars", n=5,
                                      before_timestamp=current_time)
        print(f"pid {os.getpid()} bars {len(bars)} txs {len(get_transactions(algo_id))}")
        if not get_transactions(algo_id) and len(bars) == 5:
            return ("buy", 1)
        return ("hold", 0)
