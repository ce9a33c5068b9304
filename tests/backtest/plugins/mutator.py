"""Changes the bars it is given (test plugin)."""

from db import get_data_for_algorithm, get_transactions


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.append_error = None

    def run(self, current_time, algo_id):
        bars = get_data_for_algorithm(self.ticker, "last_n_bars", n=2,
                                      before_timestamp=current_time)
        if bars:
            bars[-1]["ohlcv"]["c"] = 1.0
        try:
            get_transactions(algo_id).append({"type": "buy"})
        except TypeError as e:
            self.append_error = str(e)
        return ("hold", 0)
