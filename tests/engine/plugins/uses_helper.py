import _helper


class Algorithm:
    """Imports a helper module that sits beside it in the plugin folder."""

    def __init__(self, ticker, initial_capital):
        self.value = _helper.VALUE

    def run(self, current_time, algo_id):
        return ("hold", 0)
