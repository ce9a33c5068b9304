"""Data access for AutoTrader and the seed's data functions that algorithm plugins import.

``get_data_for_algorithm``, ``get_transactions``, ``get_latest_price`` and
``insert_minute_data`` keep the seed's exact shapes. They read from the *current data provider*:
the live system/market DBs in demo, paper and live; a backtest's in-memory data during a
backtest (``use_provider``). So a seed-style plugin works unchanged in every mode.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from db.timeutil import parse_iso, require_aware

if TYPE_CHECKING:
    from db.connection import StorageError
    from db.market import BadTickerError, Bar, MarketStore, check_ticker
    from db.system import SystemStore

# The stores (and sqlite-utils under them) load on first use, not when any ``db.*`` module
# is imported: the lock screen's first frame reads its settings through db.settings_peek
# without them (issue 15, start to first frame).
_LAZY = {"StorageError": "db.connection", "BadTickerError": "db.market", "Bar": "db.market",
         "MarketStore": "db.market", "check_ticker": "db.market", "SystemStore": "db.system"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'db' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain attribute hit
    return value

REQUEST_KINDS = ("last_n_bars",)


class DataProvider(Protocol):
    def last_n_bars(self, ticker: str, n: int, before: datetime | None) -> list[dict[str, Any]]: ...

    def transactions(self, algo_id: int) -> list[dict[str, Any]]: ...

    def latest_price(self, ticker: str) -> float | None: ...

    def insert_minute_data(self, ticker: str, bars: Iterable[Any]) -> int: ...


class StoreProvider:
    """The provider over the real system and market DBs."""

    def __init__(self, system: SystemStore, market: MarketStore) -> None:
        self.system, self.market = system, market

    def last_n_bars(self, ticker: str, n: int, before: datetime | None) -> list[dict[str, Any]]:
        before_ts = 2**62 if before is None else int(before.timestamp())
        return self.market.last_n_bars(ticker, n, before_ts)

    def transactions(self, algo_id: int) -> list[dict[str, Any]]:
        # A split shows as a zero-price buy/sell of the share difference (db/corporate.py).
        from db.corporate import seed_view

        rows = cast(list[dict[str, Any]], self.system.transactions(algo_id))  # plain dicts
        return seed_view(self.system.conn, algo_id, rows)

    def latest_price(self, ticker: str) -> float | None:
        return self.market.latest_price(ticker)

    def insert_minute_data(self, ticker: str, bars: Iterable[Any]) -> int:
        from db.market import to_row

        return self.market.insert_rows(to_row(ticker, b) for b in bars)


_provider: DataProvider | None = None
_provider_lock = threading.Lock()
# A provider for one thread only (the live engine's plugin threads), so a backtest that sets
# the global provider in the same process never feeds its data to live algorithms.
class _ThreadProvider(threading.local):
    # A class default, so reading it on a thread that never set one is a plain attribute
    # hit (getattr(local, name, None) raises and catches inside: ~1 us per seed call).
    provider: DataProvider | None = None


_thread = _ThreadProvider()


class NoDataProviderError(RuntimeError):
    pass


def use_provider(provider: DataProvider | None) -> DataProvider | None:
    """Make ``provider`` the one the seed functions read; return the previous one."""
    global _provider
    with _provider_lock:
        previous, _provider = _provider, provider
    return previous


def use_thread_provider(provider: DataProvider | None) -> DataProvider | None:
    """Make ``provider`` the one the seed functions read on this thread only (it wins over
    the global one); None removes it. Returns the previous one."""
    previous = _thread.provider
    _thread.provider = provider
    return previous


@contextmanager
def provider_scope(provider: DataProvider) -> Iterator[DataProvider]:
    previous = use_provider(provider)
    try:
        yield provider
    finally:
        use_provider(previous)


def current_provider() -> DataProvider:
    """The provider the seed functions read: this thread's, else the global one.

    Nothing is opened implicitly: a plugin run by hand outside the app first calls
    ``open_provider(system_db, market_db)`` (or ``app.engine.plugins.use_configured_dbs()``,
    which reads the paths from the config)."""
    p = _thread.provider
    if p is None:
        p = _provider
    if p is None:
        raise NoDataProviderError(
            "no data provider: outside the app call db.open_provider(system_db, market_db) "
            "or app.engine.plugins.use_configured_dbs() first"
        )
    return p


def open_provider(system_db_path: Any, market_db_path: Any) -> StoreProvider:
    """Open the system and market DBs at these paths and make them the global provider (the
    "run a plugin by hand" case); returns the provider."""
    from db.market import MarketStore
    from db.system import SystemStore

    p = StoreProvider(SystemStore(system_db_path), MarketStore(market_db_path))
    use_provider(p)
    return p


def _before(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_iso(value)
    if isinstance(value, datetime):
        return require_aware(value, "before_timestamp")
    raise TypeError(f"before_timestamp must be a datetime or ISO string, got {type(value).__name__}")


def get_data_for_algorithm(ticker: str, request_type: str = "last_n_bars", n: int = 51,
                           before_timestamp: datetime | str | None = None) -> list[dict[str, Any]]:
    """``[{'timestamp': '2024-01-31T19:59:00Z', 'ohlcv': {...}}]``, oldest first, strictly
    before ``before_timestamp``."""
    # Backtests call this every simulated minute: the common case (a known ticker, an int n,
    # an aware UTC datetime) takes the short path through each check.
    if request_type not in REQUEST_KINDS:
        raise ValueError(
            f"unknown request kind {request_type!r}; known: {', '.join(REQUEST_KINDS)}"
        )
    if type(n) is not int and (isinstance(n, bool) or not isinstance(n, int)) or n < 0:
        raise ValueError(f"n must be a whole number >= 0, got {n!r}")
    if type(ticker) is not str or ticker not in _checked_tickers:
        from db.market import check_ticker

        check_ticker(ticker)
        if len(_checked_tickers) < 10_000:
            _checked_tickers.add(ticker)
    if type(before_timestamp) is not datetime or before_timestamp.tzinfo is not UTC:
        before_timestamp = _before(before_timestamp)
    p = _thread.provider
    if p is None:
        p = _provider if _provider is not None else current_provider()
    return p.last_n_bars(ticker, n, before_timestamp)


_checked_tickers: set[str] = set()


def get_transactions(algo_id: int) -> list[dict[str, Any]]:
    """The algorithm's transactions, oldest first (``type``, ``shares``, ``price``, ``timestamp``)."""
    p = _thread.provider
    if p is None:
        p = _provider if _provider is not None else current_provider()
    return p.transactions(algo_id if type(algo_id) is int else int(algo_id))


def get_latest_price(ticker: str) -> float | None:
    from db.market import check_ticker

    check_ticker(ticker)
    return current_provider().latest_price(ticker)


def insert_minute_data(ticker: str, bars: Iterable[Any]) -> int:
    """Upsert minute bars (seed or Alpaca shape); bars outside the regular session are dropped.
    Returns how many were stored."""
    from db.market import check_ticker

    check_ticker(ticker)
    return current_provider().insert_minute_data(ticker, bars)


__all__ = [
    "Bar", "BadTickerError", "DataProvider", "MarketStore", "NoDataProviderError",
    "StorageError", "StoreProvider", "SystemStore", "check_ticker", "current_provider",
    "get_data_for_algorithm", "get_latest_price", "get_transactions", "insert_minute_data",
    "open_provider", "provider_scope", "use_provider", "use_thread_provider",
]
