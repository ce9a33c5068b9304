"""Minute bars for a backtest as numpy arrays, loaded from a CSV file or the market DB.

CSV format (one ticker per file, header required, extra columns ignored)::

    timestamp,open,high,low,close,volume
    2024-01-02T14:30:00Z,187.15,187.44,186.9,187.0,1203311

``timestamp`` is the minute's start: ISO-8601 with ``Z`` or an offset, or epoch seconds.
Rows must be sorted oldest first, one per minute, inside NYSE regular sessions.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from app.backtest.errors import BacktestError
from app.calendar import EXCHANGE_TZ, MarketCalendar
from app.timeutil import iso_z

logger = logging.getLogger(__name__)

CSV_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Bars:
    """One ticker's minute bars; ``ts`` are minute starts in epoch seconds, ascending."""

    ticker: str
    ts: np.ndarray  # int64
    o: np.ndarray  # float64
    h: np.ndarray
    l: np.ndarray  # noqa: E741 - OHLC naming
    c: np.ndarray
    v: np.ndarray  # float64 (volumes can be fractional in some sources)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def slice(self, lo: int, hi: int) -> Bars:
        return Bars(self.ticker, self.ts[lo:hi], self.o[lo:hi], self.h[lo:hi], self.l[lo:hi],
                    self.c[lo:hi], self.v[lo:hi])

    def first_day(self) -> date:
        return exchange_day(int(self.ts[0]))

    def last_day(self) -> date:
        return exchange_day(int(self.ts[-1]))

    @staticmethod
    def from_arrays(ticker: str, ts, o, h, low, c, v) -> Bars:  # noqa: ANN001 - array-likes
        return Bars(ticker, np.asarray(ts, dtype=np.int64), np.asarray(o, dtype=np.float64),
                    np.asarray(h, dtype=np.float64), np.asarray(low, dtype=np.float64),
                    np.asarray(c, dtype=np.float64), np.asarray(v, dtype=np.float64))


def exchange_day(ts: int) -> date:
    return datetime.fromtimestamp(ts, UTC).astimezone(EXCHANGE_TZ).date()


def _parse_ts(text: str, where: str) -> int:
    s = text.strip()
    if not s:
        raise BacktestError(f"{where}: the timestamp is empty")
    if s.lstrip("-").isdigit():
        return int(s)
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        raise BacktestError(
            f"{where}: timestamp {s!r} is not ISO-8601 (e.g. 2024-01-02T14:30:00Z) "
            "or epoch seconds") from None
    if t.tzinfo is None:
        raise BacktestError(
            f"{where}: timestamp {s!r} has no timezone; write it in UTC with a 'Z' "
            "(2024-01-02T14:30:00Z) or with an offset (2024-01-02T09:30:00-05:00)")
    return int(t.timestamp())


def _parse_num(text: str, column: str, where: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise BacktestError(f"{where}: {column} {text.strip()!r} is not a number") from None
    if not math.isfinite(x):
        raise BacktestError(f"{where}: {column} is {text.strip()!r}; it must be a finite number")
    return x


def load_csv(path: str | Path, ticker: str, calendar: MarketCalendar) -> Bars:
    """Read and validate a bars CSV; raise ``BacktestError`` naming the first problem."""
    path = Path(path)
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as e:
        raise BacktestError(f"cannot read CSV file {path}: {e.strerror}") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise BacktestError(f"CSV file {path} is empty; it needs a header line "
                                f"{','.join(CSV_COLUMNS)} and one row per minute") from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise BacktestError(f"CSV file {path} cannot be read as CSV: {e}") from None
        names = [h.strip().lower() for h in header]
        missing = [c for c in CSV_COLUMNS if c not in names]
        if missing:
            raise BacktestError(
                f"CSV file {path} lacks column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)}; the header must name {','.join(CSV_COLUMNS)} "
                f"(found: {','.join(names) or 'nothing'})")
        idx = [names.index(c) for c in CSV_COLUMNS]
        width = max(idx) + 1
        ts: list[int] = []
        cols: list[list[float]] = [[], [], [], [], []]
        try:
            for line_no, row in enumerate(reader, start=2):
                if not row or all(not x.strip() for x in row):
                    continue
                where = f"{path.name} line {line_no}"
                if len(row) < width:
                    raise BacktestError(f"{where}: has {len(row)} fields, expected at least {width}")
                ts.append(_parse_ts(row[idx[0]], where))
                for k, column in enumerate(CSV_COLUMNS[1:]):
                    cols[k].append(_parse_num(row[idx[k + 1]], column, where))
        except (csv.Error, UnicodeDecodeError) as e:
            raise BacktestError(f"CSV file {path} cannot be read as CSV: {e}") from None
    if not ts:
        raise BacktestError(f"CSV file {path} has a header but no rows")
    bars = Bars.from_arrays(ticker, ts, *cols)
    validate(bars, calendar, source=f"CSV file {path}", line_offset=2)
    logger.info("loaded %d bars for %s from %s", len(bars), ticker, path)
    return bars


def validate(bars: Bars, calendar: MarketCalendar, source: str, line_offset: int = 0) -> None:
    """Check order, uniqueness, whole minutes, prices and session membership.

    ``line_offset`` turns a row index into a file line number in messages (2 for a CSV with
    a header); 0 names rows by index.
    """
    def where(i: int) -> str:
        return f"line {i + line_offset}" if line_offset else f"row {i}"

    ts = bars.ts
    d = np.diff(ts)
    bad = np.flatnonzero(d < 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise BacktestError(
            f"{source} is not sorted: {where(i)} ({iso_z(int(ts[i]))}) comes before the previous "
            f"row ({iso_z(int(ts[i - 1]))}); sort the rows by time, oldest first")
    dup = np.flatnonzero(d == 0)
    if dup.size:
        i = int(dup[0]) + 1
        raise BacktestError(
            f"{source} has duplicate rows: {where(i)} repeats {iso_z(int(ts[i]))} "
            f"({dup.size} duplicate{'s' if dup.size > 1 else ''} in all); keep one row per minute")
    odd = np.flatnonzero(ts % 60)
    if odd.size:
        i = int(odd[0])
        raise BacktestError(f"{source}: {where(i)} ({iso_z(int(ts[i]))}) is not at a whole "
                            "minute; timestamps are minute starts")
    for name, arr in (("open", bars.o), ("high", bars.h), ("low", bars.l), ("close", bars.c)):
        nonpos = np.flatnonzero(arr <= 0)
        if nonpos.size:
            i = int(nonpos[0])
            raise BacktestError(f"{source}: {where(i)} has {name} {arr[i]}; prices must be > 0")
    tol = 1e-9 * bars.h
    incoherent = np.flatnonzero((bars.h + tol < np.maximum(bars.o, bars.c))
                                | (bars.l - tol > np.minimum(bars.o, bars.c)))
    if incoherent.size:
        i = int(incoherent[0])
        raise BacktestError(
            f"{source}: {where(i)} has high {bars.h[i]} / low {bars.l[i]} that do not contain "
            f"open {bars.o[i]} and close {bars.c[i]}")
    negv = np.flatnonzero(bars.v < 0)
    if negv.size:
        i = int(negv[0])
        raise BacktestError(f"{source}: {where(i)} has a negative volume")
    outside = np.flatnonzero(~session_mask(ts, calendar))
    if outside.size:
        i = int(outside[0])
        local = datetime.fromtimestamp(int(ts[i]), UTC).astimezone(EXCHANGE_TZ)
        raise BacktestError(
            f"{source}: {outside.size} row{'s are' if outside.size > 1 else ' is'} outside NYSE "
            f"regular sessions, first {where(i)} ({iso_z(int(ts[i]))} = "
            f"{local:%a %Y-%m-%d %H:%M} New York); keep only 09:30-16:00 New York on trading "
            "days (early closes end at 13:00)")


def session_mask(ts: np.ndarray, calendar: MarketCalendar) -> np.ndarray:
    """True where a bar starting at ``ts`` lies in a regular session (vectorised)."""
    opens = np.asarray(calendar._opens, dtype=np.int64)
    closes = np.asarray(calendar._closes, dtype=np.int64)
    i = np.searchsorted(opens, ts, side="right") - 1
    ok = i >= 0
    return ok & (ts < closes[np.clip(i, 0, None)])


def load_store(market, ticker: str, start_ts: int, end_ts: int) -> Bars:  # noqa: ANN001
    """Bars with start_ts <= ts < end_ts from a ``MarketStore``."""
    rows = market.bars_between(ticker, start_ts, end_ts)
    if not rows:
        return Bars.from_arrays(ticker, [], [], [], [], [], [])
    arr = np.asarray(rows, dtype=np.float64)
    return Bars(ticker, arr[:, 0].astype(np.int64), arr[:, 1].copy(), arr[:, 2].copy(),
                arr[:, 3].copy(), arr[:, 4].copy(), arr[:, 5].copy())


def write_csv(bars: Bars, path: str | Path) -> None:
    """Write bars in the documented CSV format (fixtures, exports)."""
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for i in range(len(bars)):
            w.writerow((iso_z(int(bars.ts[i])), repr(float(bars.o[i])), repr(float(bars.h[i])),
                        repr(float(bars.l[i])), repr(float(bars.c[i])), _volume(bars.v[i])))


def _volume(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def tick_minutes(bars: Bars, first: int, calendar: MarketCalendar) -> np.ndarray:
    """The minutes the engine ticks during the replay: every regular-session minute from bar
    ``first`` to the last bar, both included.

    Live trading ticks each minute whether or not a bar arrived (thin tickers and the IEX feed
    skip minutes), so the backtest does too; without gaps these are exactly the bars' minutes.
    """
    if len(bars) == 0 or first >= len(bars):
        return np.zeros(0, dtype=np.int64)
    lo, hi = int(bars.ts[first]), int(bars.ts[-1])
    first_day, last_day = exchange_day(lo), exchange_day(hi)
    parts = [np.arange(int(s.open.timestamp()), int(s.close.timestamp()), 60, dtype=np.int64)
             for s in calendar.sessions_between(first_day, last_day)]
    if not parts:  # bars outside sessions never get here (validate refuses them)
        return bars.ts[first:].copy()
    minutes = np.concatenate(parts)
    return minutes[(minutes >= lo) & (minutes <= hi)]


def tick_schedule(bars: Bars, minutes: np.ndarray) -> tuple[list[int], list[int], list[bool]]:
    """For each tick minute: the minute, the number of bars before it (= the index of the
    first bar at or after it), and whether a bar starts at that minute."""
    idx = np.searchsorted(bars.ts, minutes, side="left")
    here = np.zeros(minutes.shape[0], dtype=bool)
    inside = idx < len(bars)
    here[inside] = bars.ts[idx[inside]] == minutes[inside]
    return minutes.tolist(), idx.tolist(), here.tolist()
