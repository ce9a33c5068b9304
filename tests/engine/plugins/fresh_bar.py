from datetime import timedelta

from db import get_data_for_algorithm


class Algorithm:
    """Buys 1 share only when the bar of the minute just ended is stored (late-bar probe)."""

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker

    def run(self, current_time, algo_id):
        bars = get_data_for_algorithm(self.ticker, "last_n_bars", n=1,
                                      before_timestamp=current_time)
        wanted = (current_time - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return ("buy", 1) if bars and bars[-1]["timestamp"] == wanted else ("hold", 0)
