"""Raises on every call after a few minutes (test plugin)."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.calls = 0

    def run(self, current_time, algo_id):
        self.calls += 1
        if self.calls > 3:
            raise RuntimeError("boom")
        return ("hold", 0)
