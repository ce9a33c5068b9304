"""Buys 10 shares, then tries to sell 15, then sells 10 (test plugin)."""

from db import get_transactions


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.k = 0

    def run(self, current_time, algo_id):
        self.k += 1
        held = sum(t["shares"] if t["type"] == "buy" else -t["shares"]
                   for t in get_transactions(algo_id))
        if self.k == 2:
            return ("buy", 10)
        if self.k == 4:
            return ("sell", held + 5)
        if self.k == 6:
            return ("sell", held)
        return ("hold", 0)
