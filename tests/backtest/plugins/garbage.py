"""Cycles through answers the engine must refuse (test plugin)."""

ANSWERS = [("buy", -5), ("buy", 1.5), None, ("buy", float("nan")), ("jump", 1), ("sell", 3),
           ("buy", 10**9), "buy", ("buy", 1, 2)]


class Algorithm:
    def __init__(self, ticker, initial_capital):
        self.k = 0

    def run(self, current_time, algo_id):
        answer = ANSWERS[self.k % len(ANSWERS)]
        self.k += 1
        return answer
