"""Buys 1 share on its 3rd call, then ends its process on call ``exit_at`` (test plugin):
``how = "os"`` calls os._exit(1), ``"sys"`` calls sys.exit(3)."""

import os
import sys


class Algorithm:
    exit_at = 10
    how = "os"

    def __init__(self, ticker, initial_capital):
        self.calls = 0

    def run(self, current_time, algo_id):
        self.calls += 1
        if self.calls == self.exit_at:
            if self.how == "os":
                os._exit(1)
            sys.exit(3)
        return ("buy", 1) if self.calls == 3 else ("hold", 0)
