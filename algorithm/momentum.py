"""Daily momentum: once a day, at the first tick, be in the stock if it rose over the last
``lookback_days`` sessions (close to close) by more than ``threshold``, out otherwise.

Vectorised twin: ``app/backtest/vectorized.py`` ``momentum``.
"""

from zoneinfo import ZoneInfo

from algorithm import cash, get_data_for_algorithm, position

NEW_YORK = ZoneInfo("America/New_York")
BARS_PER_DAY = 390


class Algorithm:
    """Daily momentum: in the stock while its 5-session return is above 0, rebalanced daily."""

    display_name = "Daily momentum"
    lookback_days = 5
    threshold = 0.0
    indicators = ()  # a return over days: nothing to draw on the minute chart

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.initial_capital = initial_capital
        self.day = None

    def run(self, current_time, algo_id):
        today = current_time.astimezone(NEW_YORK).date()
        if today == self.day:
            return ("hold", 0)  # decided already today
        self.day = today
        bars = get_data_for_algorithm(self.ticker, "last_n_bars",
                                      n=(self.lookback_days + 2) * BARS_PER_DAY,
                                      before_timestamp=current_time)
        # The close of each earlier session (a session lies within one UTC date).
        last_close = {}
        before = today.isoformat()
        for b in bars:
            day = b["timestamp"][:10]
            if day < before:
                last_close[day] = b["ohlcv"]["c"]
        daily = list(last_close.values())
        if len(daily) <= self.lookback_days:
            return ("hold", 0)
        change = daily[-1] / daily[-1 - self.lookback_days] - 1.0
        held = position(algo_id)
        if change > self.threshold and held == 0:
            shares = int(cash(algo_id, self.initial_capital) * 0.99 // daily[-1])
            return ("buy", shares) if shares > 0 else ("hold", 0)
        if change <= self.threshold and held > 0:
            return ("sell", held)
        return ("hold", 0)
