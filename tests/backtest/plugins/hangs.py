"""Hangs in every call from its 3rd on (test plugin). ``deaf = True`` blocks the signal the
backtest's watchdog interrupts with, as native code that never returns to Python would."""

import signal
import time


class Algorithm:
    deaf = False

    def __init__(self, ticker, initial_capital):
        self.calls = 0

    def run(self, current_time, algo_id):
        self.calls += 1
        if self.calls >= 3:
            if self.deaf:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
            time.sleep(3600)
        return ("hold", 0)
