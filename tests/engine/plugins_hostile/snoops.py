"""Hostile: prints every environment variable that looks like a key (to the log)."""

import os


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        print("env:", sorted(os.environ))
        return ("hold", 0)
