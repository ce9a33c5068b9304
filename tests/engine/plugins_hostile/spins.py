"""Hostile: an endless loop in run()."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        n = 0
        while True:
            n += 1
