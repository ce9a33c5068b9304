import time


class Algorithm:
    """Hangs: sleeps far past the engine's time limit."""

    seconds = 3.0

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        time.sleep(self.seconds)
        return ("buy", 1)
