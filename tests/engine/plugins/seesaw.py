from algorithm import position


class Algorithm:
    """Buys `shares` when flat, sells everything when holding (uses the fast path)."""

    shares = 4

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        held = position(algo_id)
        return ("sell", held) if held else ("buy", self.shares)
