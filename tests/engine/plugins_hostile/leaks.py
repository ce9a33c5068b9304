"""Hostile: keeps ``mb`` more megabytes at every run() (a cache that is never trimmed)."""


class Algorithm:
    mb = 40

    def __init__(self, ticker, initial_capital):
        self.kept = []

    def run(self, current_time, algo_id):
        self.kept.append(bytearray(self.mb * 1024 * 1024))
        return ("hold", 0)
