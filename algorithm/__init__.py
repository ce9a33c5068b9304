"""Algorithm plugins and the small API they use.

A plugin is a module here (or in your plugin folder) defining ``class Algorithm`` with
``__init__(self, ticker, initial_capital)`` and ``run(self, current_time, algo_id)`` that
returns ``('buy', shares)``, ``('sell', shares)`` or ``('hold', 0)``. Copy
``sma_crossover.py`` to start.

Chart lines: a plugin may declare ``indicators = (("sma", "sma_short"), ("sma", 50))``, each
a kind (``"sma"``) and a length (a number, or the name of one of its parameters). The app
draws exactly those on the price chart; a plugin that declares none gets none (nothing is
guessed from parameter names).

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
