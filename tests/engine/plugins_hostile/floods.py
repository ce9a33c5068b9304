"""Hostile: prints without end (well, 20,000 lines a call) to stdout and stderr."""

import os
import sys


class Algorithm:
    def __init__(self, ticker, initial_capital):
        print(f"floods __init__ in pid {os.getpid()}")

    def run(self, current_time, algo_id):
        for i in range(10_000):
            print(f"flood line {i} from pid {os.getpid()}")
            print(f"flood err {i}", file=sys.stderr)
        return ("hold", 0)
