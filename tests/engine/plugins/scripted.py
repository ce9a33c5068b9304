"""Returns whatever its parameters say: the engine tests' puppet."""

import time


class Algorithm:
    """Answers (action, shares) from its parameters; optional delay before answering."""

    action = "hold"
    shares = 0
    delay = 0.0

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.calls = 0

    def run(self, current_time, algo_id):
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return (self.action, self.shares)
