"""Algorithm plugins and the small API they use.

A plugin is a module here (or in your plugin folder) defining ``class Algorithm`` with
``__init__(self, ticker, initial_capital)`` and ``run(self, current_time, algo_id)`` that
returns ``('buy', shares)``, ``('sell', shares)`` or ``('hold', 0)``. Copy
``sma_crossover.py`` to start.

Data, as in the seed: ``get_data_for_algorithm`` and ``get_transactions`` (import them from
``db`` or from here). Faster: ``closes(ticker, n, before)`` (a numpy array),
``position(algo_id)`` and ``cash(algo_id)``.
"""

from algorithm._api import AlgoContext, cash, closes, context, position
from db import get_data_for_algorithm, get_latest_price, get_transactions

__all__ = [
    "AlgoContext", "cash", "closes", "context", "get_data_for_algorithm", "get_latest_price",
    "get_transactions", "position",
]
