"""Hostile: ends its whole process from run() (as a native crash would)."""

import os


class Algorithm:
    code = 1

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        os._exit(self.code)
