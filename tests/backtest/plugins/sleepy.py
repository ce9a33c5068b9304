"""Hangs once, on its fifth call (test plugin for the time limit)."""

import time


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.calls = 0

    def run(self, current_time, algo_id):
        self.calls += 1
        if self.calls == 5:
            time.sleep(30)
        return ("hold", 0)
