class Algorithm:
    """Forgot run()."""

    def __init__(self, ticker, initial_capital):
        pass
