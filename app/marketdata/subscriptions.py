"""Reference-counted ticker subscriptions.

The first algorithm on a ticker subscribes it, the last one to stop unsubscribes it, in any
order; two algorithms on one ticker share one subscription. ``acquire``/``release`` return
whether the wire-level set changed, so the caller sends subscribe/unsubscribe only then.
"""

from __future__ import annotations

import threading
from collections import Counter


class SubscriptionSet:
    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, ticker: str) -> bool:
        """Count one more user of ``ticker``; True if it is newly subscribed."""
        with self._lock:
            self._counts[ticker] += 1
            return self._counts[ticker] == 1

    def release(self, ticker: str) -> bool:
        """Count one user fewer; True if nobody uses ``ticker`` any more. Extra releases are
        ignored (a stop after a failed start must not go negative)."""
        with self._lock:
            if self._counts[ticker] <= 0:
                self._counts.pop(ticker, None)
                return False
            self._counts[ticker] -= 1
            if self._counts[ticker] == 0:
                del self._counts[ticker]
                return True
            return False

    def count(self, ticker: str) -> int:
        with self._lock:
            return self._counts.get(ticker, 0)

    def tickers(self) -> set[str]:
        with self._lock:
            return set(self._counts)
