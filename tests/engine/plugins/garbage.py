import math


class Algorithm:
    """Returns the answer named by its 'kind' parameter, most of them invalid."""

    kind = "none"

    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        return {
            "none": None,
            "negative": ("buy", -5),
            "fractional": ("buy", 1.5),
            "nan": ("buy", math.nan),
            "inf": ("sell", math.inf),
            "three": ("buy", 1, 2),
            "word": ("purchase", 1),
            "string": "buy",
            "bool": ("buy", True),
        }[self.kind]
