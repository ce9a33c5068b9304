"""Well-behaved: each run() works with ``mb`` megabytes for a moment, then lets them go."""


class Algorithm:
    mb = 150

    def __init__(self, ticker, initial_capital):
        self.calls = 0

    def run(self, current_time, algo_id):
        self.calls += 1
        work = bytearray(self.mb * 1024 * 1024)
        return ("hold", len(work) * 0)
