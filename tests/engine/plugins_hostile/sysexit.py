"""Hostile: calls sys.exit(3) from run()."""

import sys


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        sys.exit(3)
