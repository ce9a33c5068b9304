"""The smallest useful plugin: buy once with (almost) all the cash, then hold."""

from algorithm import closes, position


class Algorithm:
    """Buy and hold: invests its capital at the first price it sees and keeps the shares."""

    display_name = "Buy and hold"
    cash_fraction = 0.98  # leave a little for the fill being above the last close

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.initial_capital = initial_capital

    def run(self, current_time, algo_id):
        if position(algo_id) > 0:
            return ("hold", 0)
        last = closes(self.ticker, 1, current_time)
        if len(last) == 0:
            return ("hold", 0)
        shares = int(self.initial_capital * self.cash_fraction // last[-1])
        return ("buy", shares) if shares > 0 else ("hold", 0)
