class Algorithm:
    """Raises on every call."""

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return {}["no such key"]
