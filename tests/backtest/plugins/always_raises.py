"""Raises in every call (test plugin)."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        raise ValueError("nope")
