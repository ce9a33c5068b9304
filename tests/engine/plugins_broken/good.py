class Algorithm:
    """A good plugin among broken ones."""

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return ("hold", 0)
