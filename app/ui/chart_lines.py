"""The chart's lines made small before pyqtgraph sees them: the bars in view, at most two
points per pixel column, and moving averages kept up to date one bar at a time.

pyqtgraph's own clip-to-view and peak downsampling work on the whole series for each curve on
every ``setData`` (bounds over all 100,000 points, then a slice, then a reshape), and its
automatic factor keeps about five samples per pixel. The chart appends one bar at a time and
shows a few hundred pixel columns, so it hands each curve only the columns in view, one
bucket of bars per column: the highest and the lowest value of each bucket (a line thick
enough to read shows nothing finer), with buckets starting at multiples of their size so
panning does not make the line shimmer.
"""

from __future__ import annotations

import numpy as np


def sma(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average; NaN until ``window`` values exist."""
    out = np.full(values.shape, np.nan)
    if window <= 0 or len(values) < window:
        return out
    c = np.cumsum(np.insert(values.astype(float), 0, 0.0))
    out[window - 1:] = (c[window:] - c[:-window]) / window
    return out


class MovingAverages:
    """SMA lines over a growing series: the whole series once, then only the bars that
    changed (a new bar, or the newest one corrected), each its own window's mean (no running
    sum, so no drift over months of appends)."""

    def __init__(self) -> None:
        self.windows: tuple[int, ...] = ()
        self._values: list[np.ndarray] = []
        self._valid = 0  # bars whose averages are final

    def set_windows(self, windows: tuple[int, ...]) -> None:
        self.windows = windows
        self._values = []
        self._valid = 0

    def invalidate(self, first: int = 0) -> None:
        """Bars from ``first`` on changed (0: the whole series was replaced)."""
        self._valid = min(self._valid, max(0, first))

    def update(self, close: np.ndarray) -> list[np.ndarray]:
        """The averages of ``close`` (the series so far), recomputing only what changed."""
        n = len(close)
        if not self.windows:
            return []
        if not self._values or len(self._values[0]) < n:
            cap = max(1024, int(n * 1.5))
            self._values = ([np.resize(v, cap) for v in self._values] if self._values
                            else [np.full(cap, np.nan) for _ in self.windows])
        if self._valid == 0 or n - self._valid > 1000:
            for w, v in zip(self.windows, self._values, strict=True):
                v[:n] = sma(close, w)
        else:
            for w, v in zip(self.windows, self._values, strict=True):
                for i in range(self._valid, n):
                    v[i] = close[i - w + 1:i + 1].mean() if i + 1 >= w else np.nan
        self._valid = n
        return [v[:n] for v in self._values]


def peak_decimate(y: np.ndarray, i0: int, i1: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Bars [i0, i1) as (x, y) for a line: each bar when ``k`` is 1, else for each bucket of
    ``k`` bars its highest then its lowest value at the bucket's middle (``i0`` a multiple
    of ``k``). NaN in a bucket (an average not yet defined) makes that point NaN."""
    if i1 <= i0:
        return np.zeros(0), np.zeros(0)
    if k <= 1:
        return np.arange(i0, i1, dtype=float), np.asarray(y[i0:i1], dtype=float)
    part = y[i0:i1]
    rel = np.arange(0, i1 - i0, k)
    hi = np.maximum.reduceat(part, rel)
    lo = np.minimum.reduceat(part, rel)
    mid = i0 + rel + (np.minimum(rel + k, i1 - i0) - 1 - rel) / 2.0
    x = np.repeat(mid, 2)
    out = np.empty(2 * len(rel))
    out[0::2] = hi
    out[1::2] = lo
    return x, out
