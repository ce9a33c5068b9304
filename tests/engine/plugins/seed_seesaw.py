from db import get_transactions


class Algorithm:
    """Seesaw, seed-style: its position from get_transactions."""

    shares = 3

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        held = sum(t["shares"] if t["type"] == "buy" else -t["shares"]
                   for t in get_transactions(algo_id))
        return ("sell", held) if held else ("buy", self.shares)
