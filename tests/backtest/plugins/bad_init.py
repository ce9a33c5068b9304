"""Fails in __init__ (test plugin)."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        raise ValueError("no config")

    def run(self, current_time, algo_id):
        return ("hold", 0)
