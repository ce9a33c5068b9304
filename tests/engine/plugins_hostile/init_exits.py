"""Hostile: ends its process while being created."""

import os


class Algorithm:
    def __init__(self, ticker, initial_capital):
        os._exit(4)

    def run(self, current_time, algo_id):
        return ("hold", 0)
