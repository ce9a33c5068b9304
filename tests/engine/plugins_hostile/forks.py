"""Hostile: forks a child that spins for ever (writing its pid where the test reads it),
then hangs itself, so its worker is killed at the time limit."""

import os
import time


class Algorithm:
    pid_file = ""

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        pid = os.fork()
        if pid == 0:
            with open(self.pid_file, "w") as f:
                f.write(str(os.getpid()))
            while True:
                pass
        while True:
            time.sleep(1)
