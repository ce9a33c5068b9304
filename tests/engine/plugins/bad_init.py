class Algorithm:
    """Its constructor fails."""

    def __init__(self, ticker, initial_capital):
        raise RuntimeError("cannot start")

    def run(self, current_time, algo_id):
        return ("hold", 0)
