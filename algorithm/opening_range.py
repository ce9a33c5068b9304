"""Opening-range breakout: buy when the price breaks above the day's first minutes' high.

The opening range is the high and low of the bars in the first ``range_minutes`` of the
session. After it: buy when the last close is above the range's high (until ``exit_minute``
minutes after the open); sell when it falls below the range's low, at ``exit_minute``, or,
for shares still held at the next open, before the new range forms. Vectorised twin:
``app/backtest/vectorized.py`` ``opening_range``.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from algorithm import cash, closes, get_data_for_algorithm, position

NEW_YORK = ZoneInfo("America/New_York")


class Algorithm:
    """Opening-range breakout: long above the first 30 minutes' high, out by 15:45."""

    display_name = "Opening-range breakout"
    range_minutes = 30
    exit_minute = 375  # minutes after 9:30: 15:45
    indicators = ()  # the range is two levels, not a moving average: nothing to draw

    def __init__(self, ticker, initial_capital):
        self.ticker = ticker
        self.initial_capital = initial_capital
        self.day = None
        self.range = None  # (high, low) of today's opening range, or None without bars

    def run(self, current_time, algo_id):
        ny = current_time.astimezone(NEW_YORK)
        opened = ny.replace(hour=9, minute=30, second=0, microsecond=0)
        minute = (ny - opened).total_seconds() // 60
        held = position(algo_id)
        if minute < self.range_minutes:
            return ("sell", held) if held > 0 else ("hold", 0)
        if self.day != ny.date():
            self.day, self.range = ny.date(), None
            end = opened + timedelta(minutes=self.range_minutes)
            bars = get_data_for_algorithm(self.ticker, "last_n_bars", n=self.range_minutes,
                                          before_timestamp=end.astimezone(UTC))
            start = opened.astimezone(UTC)
            today = [b["ohlcv"] for b in bars
                     if datetime.fromisoformat(b["timestamp"].replace("Z", "+00:00")) >= start]
            if today:
                self.range = (max(b["h"] for b in today), min(b["l"] for b in today))
        last = closes(self.ticker, 1, current_time)
        if self.range is None or len(last) == 0:
            return ("sell", held) if held > 0 else ("hold", 0)
        high, low = self.range
        price = last[-1]
        if held == 0 and minute < self.exit_minute and price > high:
            shares = int(cash(algo_id, self.initial_capital) * 0.99 // price)
            return ("buy", shares) if shares > 0 else ("hold", 0)
        if held > 0 and (minute >= self.exit_minute or price < low):
            return ("sell", held)
        return ("hold", 0)
