"""Hostile: asks for 10 GB of memory in run()."""


class Algorithm:
    def __init__(self, ticker, initial_capital):
        pass

    def run(self, current_time, algo_id):
        block = bytearray(10 * 1024**3)
        return ("hold", len(block) * 0)
