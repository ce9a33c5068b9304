"""The data provider the seed functions read during a backtest (``db.provider_scope``).

``get_data_for_algorithm`` and ``get_transactions`` serve the backtest's in-memory bars and
ledger instead of the live DBs, and never look ahead: every answer is capped at the simulated
"now" (the minute being decided), whatever ``before_timestamp`` the plugin asks for.

Speed is the point: a seed-style plugin asks for its last 51 bars every minute. The seed-shape
dicts are built once for the whole series and each call returns a slice of that list, so a call
costs about a microsecond instead of a SQLite query plus 51 fresh dicts.

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
    """One ticker's bars in the shapes the provider serves."""

    def __init__(self, bars: Bars) -> None:
        self.bars = bars
        self.ts: list[int] = bars.ts.tolist()
        self.close: list[float] = bars.c.tolist()
        self.close_array = bars.c.copy()
        self.close_array.flags.writeable = False
        stamps = iso_strings(bars.ts)
        o, h, lo, c, v = (a.tolist() for a in (bars.o, bars.h, bars.l, bars.c, bars.v))
        whole = bool(np.all(bars.v == np.floor(bars.v)))
        vol = bars.v.astype(np.int64).tolist() if whole else v
        # Hundreds of thousands of new containers would trigger the cyclic GC again and again
        # (it was 2/3 of the build time); none of them can form a cycle.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self.seed: list[dict[str, Any]] = self._build(stamps, o, h, lo, c, vol)
        finally:
            if was_enabled:
                gc.enable()
        self._columns = (stamps, o, h, lo, c, vol)

    @staticmethod
    def _build(stamps: list[str], *cols: list[Any]) -> list[dict[str, Any]]:
        return [{"timestamp": t, "ohlcv": {"o": a, "h": b, "l": d, "c": e, "v": f}}
                for t, a, b, d, e, f in zip(stamps, *cols, strict=True)]

    def tampered(self) -> bool:
        """True if a plugin changed any of the shared bar dicts during the run."""
        seed = self.seed
        try:
            if set(map(len, seed)) != {2}:
                return True
            stamps, *cols = self._columns
            if list(map(itemgetter("timestamp"), seed)) != stamps:
                return True
            inner = list(map(itemgetter("ohlcv"), seed))
            if set(map(len, inner)) != {5}:
                return True
            return any(list(map(itemgetter(k), inner)) != col
                       for k, col in zip("ohlcv", cols, strict=True))
        except (KeyError, TypeError):
            return True


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
        self._main_ticker = series[0].ticker
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
        return s.seed[lo:hi]

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


_EMPTY = FrozenList()
_NO_CLOSES = np.zeros(0)
_NO_CLOSES.flags.writeable = False
