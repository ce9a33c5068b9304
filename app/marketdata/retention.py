"""Bounding the market DB on a Pi's SD card, and getting bars out of it.

``prune_before`` deletes minute bars older than a date (``autotrader data prune --before``);
``apply_keep_days`` does it for ``[market] keep_days`` at most once a day (the app calls it at
start and after each close). ``export_csv`` writes one ticker's bars in the backtest's CSV
format (``autotrader data export TICKER --csv FILE``).
"""

from __future__ import annotations

import csv
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from db import history

logger = logging.getLogger(__name__)

PRUNED_KEY = "market.pruned_day"
CSV_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


def _day_start_ts(day: date) -> int:
    from db.calendar import EXCHANGE_TZ

    return int(datetime(day.year, day.month, day.day, tzinfo=EXCHANGE_TZ).timestamp())


def prune_before(market: Any, day: date) -> dict[str, int]:
    """Delete every bar before ``day`` (exchange time); returns bars deleted per ticker."""
    ts = _day_start_ts(day)
    out = {}
    for t in history.tickers(market.conn):
        n = history.prune_ticker_before(market.conn, t, ts)
        if n:
            out[t] = n
    logger.info("market DB pruned before %s: %d bars (%s)", day, sum(out.values()),
                ", ".join(f"{t} {n}" for t, n in out.items()) or "nothing")
    return out


def apply_keep_days(market: Any, system: Any, keep_days: int, today: date) -> dict[str, int] | None:
    """``[market] keep_days``: prune once per ``today`` (recorded in the system DB); None when
    it is off or already done today."""
    if keep_days <= 0:
        return None
    if system.get_setting(PRUNED_KEY) == today.isoformat():
        return None
    out = prune_before(market, today - timedelta(days=keep_days))
    system.set_setting(PRUNED_KEY, today.isoformat())
    return out


def export_csv(market: Any, ticker: str, out: TextIO, start: date | None = None,
               end: date | None = None) -> int:
    """Write ``ticker``'s bars (``start`` .. ``end`` inclusive, exchange dates) as CSV."""
    lo = _day_start_ts(start) if start else None
    hi = _day_start_ts(end + timedelta(days=1)) if end else None
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    n = 0
    for ts, o, h, low, c, v in history.bars_of(market.conn, ticker.upper(), lo, hi):
        w.writerow((datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    repr(float(o)), repr(float(h)), repr(float(low)), repr(float(c)),
                    str(int(v))))
        n += 1
    return n


def export_to(market: Any, ticker: str, path: Path | None, start: date | None = None,
              end: date | None = None) -> int:
    import sys

    if path is None:
        return export_csv(market, ticker, sys.stdout, start, end)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        return export_csv(market, ticker, f, start, end)
