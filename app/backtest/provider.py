"""The data provider the seed functions read during a backtest (``db.use_thread_provider``).

``get_data_for_algorithm`` and ``get_transactions`` serve the backtest's in-memory bars and
ledger instead of the live DBs, and never look ahead: every answer is capped at the simulated
"now" (the minute being decided), whatever ``before_timestamp`` the plugin asks for.

Speed is the point: a seed-style plugin asks for its last 51 bars every minute. The seed-shape
dicts are built once per bar (a chunk at a time, see ``Series``) and each call returns a slice
of a list of them, so a call costs about a microsecond instead of a SQLite query plus 51 fresh
dicts.

The trade-off: the bar dicts are shared between minutes. Making them read-only (a dict subclass
whose mutators raise) cost 15 % of a seed-style run, because CPython's fast path for ``d[k]``
only applies to exact dicts; so they are plain dicts and ``tampered()`` checks after the run
that the plugin left them as they were (the report warns otherwise). Transactions are few and
are handed over as a read-only list of plain dicts (checked the same way).
"""

from __future__ import annotations

import bisect
import gc
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from operator import itemgetter
from typing import Any

import numpy as np

from app.backtest.bars import Bars

logger = logging.getLogger(__name__)


def _read_only(*_: Any, **__: Any) -> Any:
    raise TypeError("backtest data is read-only; copy it (dict(x) / list(x)) before changing it")


class FrozenList(list):
    """A list whose mutators raise: handed to plugins without copying."""

    __slots__ = ()
    __setitem__ = __delitem__ = append = extend = insert = pop = remove = _read_only
    clear = sort = reverse = __iadd__ = __imul__ = _read_only


def iso_strings(ts: np.ndarray) -> list[str]:
    """``2024-01-31T19:59:00Z`` for every epoch second in ``ts``.

    A year of minutes has ~250 distinct days and ~400 distinct times of day, so the strings
    are joined from two small tables (3x faster than formatting each one).
    """
    if ts.size == 0:
        return []
    days, day_idx = np.unique(ts // 86400, return_inverse=True)
    secs, sec_idx = np.unique(ts % 86400, return_inverse=True)
    day_str = [s + "T" for s in np.datetime_as_string(days.astype("datetime64[D]")).tolist()]
    sec_str = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z" for s in secs.tolist()]
    return [day_str[d] + sec_str[t] for d, t in zip(day_idx.tolist(), sec_idx.tolist(),
                                                    strict=True)]


class Series:
    """One ticker's bars in the shapes the provider serves.

    The seed-shape dicts exist only for a sliding window of bars: built a chunk ahead as the
    replay moves forward and dropped once behind the oldest bar asked for, so memory stays
    small for years of minutes (a whole year of dicts is ~70 MB) and bars never asked for
    (a long CSV history before --start) are never built.
    """

    def __init__(self, bars: Bars) -> None:
        self.bars = bars
        self.ts: list[int] = bars.ts.tolist()
        self.close: list[float] = bars.c.tolist()
        self.close_array = bars.c.copy()
        self.close_array.flags.writeable = False
        self._whole_volume = bool(np.all(bars.v == np.floor(bars.v)))
        self.w0 = self.w1 = 0            # the window holds the dicts of bars [w0, w1)
        self.win: list[dict[str, Any]] = []
        self.changed = False             # a dict dropped from the window had been modified

    def rows(self, lo: int, hi: int) -> list[dict[str, Any]]:
        """The seed dicts of bars [lo, hi), oldest first (a new list, shared dicts)."""
        if lo < self.w0 or hi > self.w1:
            self._refill(lo, hi)
        w0 = self.w0
        return self.win[lo - w0:hi - w0]

    def _refill(self, lo: int, hi: int) -> None:
        ahead = min(len(self.ts), max(hi, lo + WINDOW_CHUNK))
        if self.w0 <= lo <= self.w1:     # moving forward: drop what is behind, build ahead
            self._retire(self.w0, lo)
            del self.win[:lo - self.w0]
            self.win.extend(self._build(self.w1, ahead))
        else:                            # a jump (or a longer look-back): start over
            self._retire(self.w0, self.w1)
            self.win = self._build(lo, ahead)
        self.w0, self.w1 = lo, ahead

    def _build(self, lo: int, hi: int) -> list[dict[str, Any]]:
        if hi <= lo:
            return []
        b = self.bars
        stamps = iso_strings(b.ts[lo:hi])
        o, h, low, c = (a[lo:hi].tolist() for a in (b.o, b.h, b.l, b.c))
        v = b.v[lo:hi].astype(np.int64).tolist() if self._whole_volume else b.v[lo:hi].tolist()
        # Thousands of new containers at once would trigger the cyclic GC again and again
        # (2/3 of the build time); none of them can form a cycle.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return [{"timestamp": t, "ohlcv": {"o": a, "h": bb, "l": d, "c": e, "v": f}}
                    for t, a, bb, d, e, f in zip(stamps, o, h, low, c, v, strict=True)]
        finally:
            if was_enabled:
                gc.enable()

    def _retire(self, lo: int, hi: int) -> None:
        """Check the dicts of bars [lo, hi) (still in the window) against the arrays,
        column by column (cheaper than building fresh dicts to compare)."""
        if hi <= lo or self.changed:
            return
        seg = self.win[lo - self.w0:hi - self.w0]
        b = self.bars
        try:
            same = (set(map(len, seg)) == {2}
                    and list(map(_TIMESTAMP, seg)) == iso_strings(b.ts[lo:hi]))
            if same:
                inner = list(map(_OHLCV, seg))
                same = set(map(len, inner)) == {5} and all(
                    list(map(itemgetter(k), inner)) == arr[lo:hi].tolist()
                    for k, arr in zip("ohlcv", (b.o, b.h, b.l, b.c, b.v), strict=True))
        except (KeyError, TypeError):
            same = False
        self.changed = not same

    def tampered(self) -> bool:
        """True if a plugin changed any of the shared bar dicts during the run."""
        self._retire(self.w0, self.w1)
        return self.changed


class BacktestProvider:
    """Serves ``db``'s seed functions from memory, capped at the simulated now."""

    def __init__(self, bars: Bars | Iterable[Bars],
                 other: Callable[[str], Bars | None] | None = None) -> None:
        """``bars``: the algorithm's ticker first. ``other(ticker)`` loads another ticker's
        bars the first time a plugin asks for them (None: the backtest has only these)."""
        series = [bars] if isinstance(bars, Bars) else list(bars)
        self._other = other
        self.missing: set[str] = set()
        self._series: dict[str, Series] = {b.ticker: Series(b) for b in series}
        self.main: Series = self._series[series[0].ticker]
        self._i = 0                      # bars[:_i] of the main series are visible
        self._now_ts = -(2**62)
        self._now_dt: datetime | None = None
        self._tx: dict[int, FrozenList] = {}
        self._tx_copy: dict[int, list[dict[str, Any]]] = {}
        self.refused_writes = 0

    def _load(self, ticker: str) -> Series | None:
        if ticker in self.missing:
            return None
        bars = self._other(ticker) if self._other is not None else None
        if bars is None or len(bars) == 0:
            self.missing.add(ticker)
            logger.warning("a plugin asked for %s bars, which this backtest does not have",
                           ticker)
            return None
        s = self._series[ticker] = Series(bars)
        return s

    # --- the simulated clock -------------------------------------------------------------
    def advance(self, i: int, now: datetime, now_ts: int) -> None:
        """The minute being decided is ``now`` (= the main series' bar ``i``, not yet seen)."""
        self._i, self._now_dt, self._now_ts = i, now, now_ts

    # --- ledger --------------------------------------------------------------------------
    def record(self, algo_id: int, transaction: dict[str, Any]) -> None:
        old = self._tx.get(algo_id, ())
        self._tx[algo_id] = FrozenList((*old, dict(transaction)))
        self._tx_copy.setdefault(algo_id, []).append(dict(transaction))

    # --- the DataProvider protocol ---------------------------------------------------------
    def last_n_bars(self, ticker: str, n: int, before: datetime | None) -> list[dict[str, Any]]:
        s = self._series.get(ticker) or self._load(ticker)
        if s is None:
            return []
        if before is self._now_dt and s is self.main:
            hi = self._i  # the common case: "bars before now" for the algorithm's own ticker
        else:
            b = self._now_ts if before is None else min(int(before.timestamp()), self._now_ts)
            hi = bisect.bisect_left(s.ts, b)
        lo = hi - n if hi > n else 0
        if lo >= s.w0 and hi <= s.w1:  # inside the built window (all but one call a chunk)
            w0 = s.w0
            return s.win[lo - w0:hi - w0]
        return s.rows(lo, hi)

    def last_n_closes(self, ticker: str, n: int, before: datetime | None) -> np.ndarray:
        """The fast path behind ``algorithm.closes()``: a read-only view, no copy."""
        s = self._series.get(ticker) or self._load(ticker)
        if s is None:
            return _NO_CLOSES
        if before is self._now_dt and s is self.main:
            hi = self._i
        else:
            b = self._now_ts if before is None else min(int(before.timestamp()), self._now_ts)
            hi = bisect.bisect_left(s.ts, b)
        return s.close_array[hi - n if hi > n else 0:hi]

    def transactions(self, algo_id: int) -> list[dict[str, Any]]:
        return self._tx.get(algo_id, _EMPTY)

    def latest_price(self, ticker: str) -> float | None:
        s = self._series.get(ticker) or self._load(ticker)
        if s is None:
            return None
        hi = self._i if s is self.main else bisect.bisect_left(s.ts, self._now_ts)
        return s.close[hi - 1] if hi else None

    def tampered(self) -> list[str]:
        """What a plugin modified of the shared data: tickers' bars, 'transactions'."""
        out = [t for t, s in self._series.items() if s.tampered()]
        if any(list(self._tx[a]) != self._tx_copy[a] for a in self._tx):
            out.append("transactions")
        return out

    def insert_minute_data(self, ticker: str, bars: Iterable[Any]) -> int:
        # History is fixed during a replay; a plugin that writes bars must not change it.
        self.refused_writes += 1
        if self.refused_writes == 1:
            logger.warning("a plugin tried to store bars for %s during a backtest; ignored", ticker)
        return 0


WINDOW_CHUNK = 16384
_TIMESTAMP, _OHLCV = itemgetter("timestamp"), itemgetter("ohlcv")
_EMPTY = FrozenList()
_NO_CLOSES = np.zeros(0)
_NO_CLOSES.flags.writeable = False
