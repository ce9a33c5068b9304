"""Stock splits in backtests: every backtest replays split-adjusted prices.

The live engine, on a split's ex-date, scales the stored bars before it (prices x old/new,
volume x new/old; ``db.corporate.adjust_bars``) and the positions (shares x new/old, average
cost x old/new). Replaying adjusted prices is that state, from the first minute on: a
position bought before the ex-date is already counted in post-split shares at post-split
prices, so value, P&L and every decision come out as if the split had never happened, with
no cliff on the chart.

- market DB: its bars are adjusted already (the corporate engine did it at the ex-date, and
  scales later backfills of older minutes as they come in); a ``--split`` the DB has applied
  is not applied twice;
- CSV: raw vendor data carries its splits with ``--split TICKER:DATE:RATIO`` (the same
  scaling as the DB's, from the same ex-date boundary: midnight New York), or says it is
  adjusted already with ``--adjusted``. A CSV with neither whose overnight gap looks like a
  split gets a warning in the report naming the ``--split`` to give.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from app.backtest.bars import Bars, exchange_day
from db.corporate import ex_epoch

SplitSpec = tuple[str, str, float, float]  # (ticker, ex_date, new_rate, old_rate)
# A gap between sessions this close to a common ratio (and at least 1.8x) looks like a split.
COMMON_RATIOS = (2, 3, 4, 5, 6, 8, 10, 15, 20, 25, 30, 40, 50)


def _rate(x: float) -> str:
    return f"{x:g}"


def adjust(bars: Bars, splits: Iterable[SplitSpec],
           applied: Iterable[tuple[int, float]] = ()) -> Bars:
    """``bars`` with every split of its ticker applied to the bars before its ex-date.
    ``applied``: (ex_ts, factor) already in the data (the market DB's), skipped."""
    done = {int(ts) for ts, _ in applied}
    o, h, lo, c, v = (a.copy() for a in (bars.o, bars.h, bars.l, bars.c, bars.v))
    notes = list(bars.notes)
    for ticker, day, new, old in sorted(splits, key=lambda s: s[1]):
        if ticker != bars.ticker:
            continue
        ex_ts = ex_epoch(day)
        what = f"{ticker} {_rate(new)}-for-{_rate(old)} split on {day}"
        if ex_ts in done:
            notes.append(f"{what}: the market DB's bars are adjusted for it already")
            continue
        factor = float(old) / float(new)
        k = int(np.searchsorted(bars.ts, ex_ts, side="left"))
        for a in (o, h, lo, c):
            a[:k] *= factor
        v[:k] = np.floor(v[:k] / factor + 0.5)  # as the DB: ROUND(v / factor)
        done.add(ex_ts)
        notes.append(f"{what}: {k} bars before it scaled by {factor:g} (prices) and "
                     f"{1 / factor:g} (volume); positions count post-split shares")
    return Bars(bars.ticker, bars.ts, o, h, lo, c, v, tuple(notes))


def suspected(bars: Bars) -> list[str]:
    """Overnight gaps that look like an unadjusted split: what ``--split`` to give."""
    if len(bars) < 2:
        return []
    days = bars.ts // 86_400  # sessions lie within one UTC date (13:30-21:00 UTC)
    first = np.flatnonzero(np.diff(days) != 0) + 1      # first bar of each later session
    gap = bars.o[first] / bars.c[first - 1]
    out = []
    for i, g in zip(first.tolist(), gap.tolist(), strict=True):
        if not (g > 0 and math.isfinite(g)) or 0.55 < g < 1.8:
            continue
        r = 1 / g if g < 1 else g
        near = min(COMMON_RATIOS, key=lambda x: abs(x - r))
        if abs(r - near) / near > 0.15:
            continue
        day = exchange_day(int(bars.ts[i])).isoformat()
        ratio = f"{near}" if g < 1 else f"1:{near}"
        out.append(f"prices gap x{g:.3g} overnight into {day}: an unadjusted split? Give "
                   f"--split {bars.ticker}:{day}:{ratio}, or --adjusted if the data is adjusted")
    return out
