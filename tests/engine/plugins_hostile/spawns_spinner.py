"""Hostile: its first run() starts a thread that spins for ever, then returns normally."""

import threading


def _spin():
    while True:
        pass


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.started = False

    def run(self, current_time, algo_id):
        if not self.started:
            self.started = True
            threading.Thread(target=_spin, daemon=True).start()
        return ("hold", 0)
