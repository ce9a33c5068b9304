"""Hangs once, catching every exception while it waits (test plugin for the time limit)."""

import time


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.calls = 0
        self.swallowed = 0

    def run(self, current_time, algo_id):
        self.calls += 1
        if self.calls == 3:
            end = time.monotonic() + 30
            while time.monotonic() < end:
                try:
                    time.sleep(30)
                except Exception:
                    self.swallowed += 1
                    if self.swallowed >= 2:
                        break  # give up after two interruptions, answer late
            return ("buy", 1)
        return ("hold", 0)
