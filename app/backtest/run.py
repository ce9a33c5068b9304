"""One backtest from a spec: resolve the plugin and its parameters, load and slice the bars,
run the chosen path. Everything a user can get wrong becomes a ``BacktestError``."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from app.backtest.bars import Bars, exchange_day, load_csv, load_store
from app.backtest.errors import BacktestError
from app.backtest.fills import FILL_RULES
from app.backtest.replay import Progress, run_event
from app.backtest.result import RunResult
from app.backtest.vectorized import VECTORISED, run_vector
from db.calendar import MarketCalendar, nyse
from db.market import BadTickerError, check_ticker
from db.timeutil import from_epoch, iso_z

logger = logging.getLogger(__name__)

PATHS = ("event", "vector", "exact")


@dataclass(frozen=True)
class Spec:
    plugin: str
    ticker: str
    capital: float = 10_000.0
    start: date | None = None
    end: date | None = None
    params: dict[str, Any] = field(default_factory=dict)
    csv: Path | None = None
    market_db: Path | None = None
    plugin_dirs: tuple[Path, ...] = ()
    path: str = "event"
    fill: str = "open"
    slippage_bps: float = 0.0
    commission_per_share: float = 0.0
    timeout_s: float = 2.0
    strict_cash: bool = False       # refuse a buy whose fill overdraws the algorithm's cash
    tz: str | None = None           # the zone of a CSV's times that carry none
    max_timeouts: int = 5           # stop after this many time-limit overruns in a row (0: never)
    warmup_days: int = 5            # sessions of DB history loaded before --start
    splits: tuple[tuple[str, str, float, float], ...] = ()  # --split: (ticker, ex, new, old)
    adjusted: bool = False          # the CSV says its prices are split-adjusted already
    risk: Any = None                # the live risk guards (RiskLimits) to apply; exact path only
    risk_source: str = ""           # where those limits come from (said in the report)


def resolve_plugin(name: str, dirs: tuple[Path, ...] = ()):  # noqa: ANN201 - PluginInfo
    from app.engine.plugins import PluginNotFoundError, discover_plugins, load_plugin

    try:
        info = load_plugin(name, list(dirs))
    except PluginNotFoundError:
        found = [p.name for p in discover_plugins(list(dirs))]
        raise BacktestError(f"no algorithm plugin named {name!r} (available: "
                            f"{', '.join(found) or 'none'})") from None
    if info.error or info.cls is None:
        raise BacktestError(f"plugin {name!r} is broken: {info.error}")
    return info


def check_params(info: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The plugin's own parameter check (names and types), as a ``BacktestError``."""
    from app.engine.plugins import coerce_params

    try:
        return coerce_params(info, params)
    except ValueError as e:
        raise BacktestError(str(e)) from None


def _session_bounds(calendar: MarketCalendar, start: date, end: date) -> tuple[int, int]:
    sessions = calendar.sessions_between(start, end)
    if not sessions:
        raise BacktestError(f"there is no NYSE session between {start} and {end}")
    return int(sessions[0].open.timestamp()), int(sessions[-1].close.timestamp())


def select(bars: Bars, start: date | None, end: date | None, calendar: MarketCalendar,
           source: str) -> tuple[Bars, int]:
    """Cut ``bars`` at the end of ``end`` and find the first bar of ``start``.

    Bars before ``start`` stay as history the plugin can read; the replay begins at the
    returned index. Dates outside the data are refused rather than silently shortened.
    """
    if len(bars) == 0:
        raise BacktestError(f"{source} has no bars")
    first_day, last_day = bars.first_day(), bars.last_day()
    start, end = start or first_day, end or last_day
    lo_ts, hi_ts = _checked_range(calendar, start, end, first_day, last_day, source)
    lo = int(np.searchsorted(bars.ts, lo_ts, side="left"))
    hi = int(np.searchsorted(bars.ts, hi_ts, side="left"))
    if hi <= lo:
        raise BacktestError(f"{source} has no bars between {start} and {end}")
    return bars.slice(0, hi), lo


def _checked_range(calendar: MarketCalendar, start: date, end: date, first: date, last: date,
                   source: str) -> tuple[int, int]:
    """Session bounds of start..end, refused with a message when outside first..last."""
    if start > end:
        raise BacktestError(f"--start {start} is after --end {end}")
    lo_ts, hi_ts = _session_bounds(calendar, start, end)
    if exchange_day(lo_ts) < first:
        raise BacktestError(f"--start {start} is before the data: {source} covers "
                            f"{first} .. {last}")
    if exchange_day(hi_ts - 60) > last:
        raise BacktestError(f"--end {end} is after the data: {source} covers "
                            f"{first} .. {last}")
    return lo_ts, hi_ts


def load_bars(spec: Spec, calendar: MarketCalendar | None = None) -> tuple[Bars, int]:
    calendar = calendar or nyse()
    try:
        check_ticker(spec.ticker)
    except BadTickerError as e:
        raise BacktestError(str(e)) from None
    if spec.csv is not None:
        bars = load_csv(spec.csv, spec.ticker, calendar, tz=spec.tz)
        bars = _csv_splits(bars, spec)
        return select(bars, spec.start, spec.end, calendar, f"{Path(spec.csv).name}")
    if spec.market_db is None or not Path(spec.market_db).exists():
        raise BacktestError(
            f"no market DB at {spec.market_db}; give bars with --csv FILE, or let the app "
            "store some first (demo or paper mode fills it)")
    store = open_market(Path(spec.market_db), calendar)
    try:
        span = store.bar_span(spec.ticker)
        if span is None:
            known = store.tickers()
            raise BacktestError(
                f"the market DB {spec.market_db} has no bars for {spec.ticker} (it has: "
                f"{', '.join(known[:20]) or 'none'}); use --csv FILE for other data")
        db_first, db_last = exchange_day(span[0]), exchange_day(span[1])
        source = f"the market DB ({spec.ticker})"
        start, end = spec.start or db_first, spec.end or db_last
        lo_ts, hi_ts = _checked_range(calendar, start, end, db_first, db_last, source)
        # History before --start for the plugin's look-back.
        warm = calendar.sessions_before(from_epoch(lo_ts), spec.warmup_days)
        from_ts = int(warm[0].open.timestamp()) if warm else lo_ts
        bars = load_store(store, spec.ticker, from_ts, hi_ts)
        if spec.splits:  # the DB's bars are adjusted already for the splits it applied
            from app.backtest.splits import adjust
            from db.corporate import bar_factors

            bars = adjust(bars, spec.splits, bar_factors(store.conn).get(spec.ticker, ()))
        return select(bars, start, end, calendar, source)
    finally:
        store.close()


def _csv_splits(bars: Bars, spec: Spec) -> Bars:
    """A CSV's splits (``--split``) applied; without them or ``--adjusted``, a warning for
    each overnight gap that looks like a split (app/backtest/splits.py)."""
    from app.backtest.splits import adjust, suspected

    if spec.splits:
        return adjust(bars, spec.splits)
    if spec.adjusted:
        return bars
    warn = suspected(bars)
    for w in warn:
        logger.warning("%s: %s", spec.ticker, w)
    return replace(bars, notes=(*bars.notes, *warn)) if warn else bars


def open_market(path: Path, calendar: MarketCalendar | None = None) -> Any:
    """The market DB as a ``MarketStore``; a file that cannot be used is a ``BacktestError``."""
    import sqlite3

    from db.connection import StorageError
    from db.market import MarketStore
    from db.migrations import SchemaTooNewError

    try:
        return MarketStore(path, calendar)
    except (StorageError, SchemaTooNewError, sqlite3.Error) as e:
        raise BacktestError(f"cannot read the market DB {path}: {e}") from None


def _other_ticker(market_db: Path, lo_ts: int, hi_ts: int, ticker: str) -> Bars | None:
    """Another ticker's bars over the same period, for a plugin that reads several."""
    try:
        check_ticker(ticker)
    except BadTickerError:
        return None
    store = open_market(market_db)
    try:
        return load_store(store, ticker, lo_ts, hi_ts)
    finally:
        store.close()


def check_spec(spec: Spec) -> None:
    if spec.adjusted and spec.splits:
        raise BacktestError("--adjusted says the prices need no split adjustment; give it or "
                            "--split, not both")
    if not spec.capital > 0:
        raise BacktestError(f"--capital must be positive, got {spec.capital:g}")
    if spec.path not in PATHS:
        raise BacktestError(f"unknown path {spec.path!r}")
    if spec.fill not in FILL_RULES:
        raise BacktestError(f"--fill must be {' or '.join(FILL_RULES)}, got {spec.fill!r}")
    if spec.slippage_bps < 0 or spec.commission_per_share < 0:
        raise BacktestError("slippage and commission cannot be negative")
    if spec.path == "vector" and spec.plugin not in VECTORISED:
        raise BacktestError(
            f"plugin {spec.plugin!r} has no vectorised version (available: "
            f"{', '.join(sorted(VECTORISED))}); run it without --vector")


def run(spec: Spec, bars: tuple[Bars, int] | None = None,
        progress: Progress | None = None, **watch: Any) -> RunResult:
    """Run one backtest. ``bars`` (from ``load_bars``) may be passed in to load data once.
    ``watch``: ``beacon`` and ``on_fill`` for the event path (see ``run_event``)."""
    result = _run(spec, bars, progress, watch)
    result.settings = {
        "capital": spec.capital, "fill": spec.fill, "slippage_bps": spec.slippage_bps,
        "commission_per_share": spec.commission_per_share, "plugin_timeout_s": spec.timeout_s,
        "strict_cash": spec.strict_cash, "tz": spec.tz,
        "splits": [f"{t}:{d}:{n:g}:{o:g}" for t, d, n, o in spec.splits],
        "adjusted": spec.adjusted,
        "data": str(spec.csv) if spec.csv else f"market DB {spec.market_db}",
        "start": spec.start.isoformat() if spec.start else None,
        "end": spec.end.isoformat() if spec.end else None,
        "risk_guards": None if spec.risk is None else {
            "source": spec.risk_source, "limits": asdict(spec.risk)}}
    return result


def _run(spec: Spec, bars: tuple[Bars, int] | None,
         progress: Progress | None, watch: dict[str, Any]) -> RunResult:
    check_spec(spec)
    info = resolve_plugin(spec.plugin, spec.plugin_dirs)
    params = check_params(info, spec.params)
    data, first = bars if bars is not None else load_bars(spec)
    result = _run_path(spec, info, params, data, first, progress, watch)
    if data.notes:  # what loading the data changed (rows dropped), first in the report
        when = iso_z(int(result.ts[0])) if len(result.ts) else None
        result.problems[:0] = [{"timestamp": when, "kind": "warning", "reason": n}
                               for n in data.notes]
    return result


def _run_path(spec: Spec, info: Any, params: dict[str, Any], data: Bars, first: int,
              progress: Progress | None, watch: dict[str, Any]) -> RunResult:
    if spec.path == "vector":
        full = {**info.params, **params}
        result = run_vector(spec.plugin, full, data, first, spec.capital,
                            slippage_bps=spec.slippage_bps,
                            commission_per_share=spec.commission_per_share, fill=spec.fill,
                            strict_cash=spec.strict_cash)
        result.params = params
        return result
    if spec.path == "exact":
        from app.backtest.exact import run_exact

        return run_exact(info, params, data, first, spec.capital,
                         slippage_bps=spec.slippage_bps,
                         commission_per_share=spec.commission_per_share, fill=spec.fill,
                         timeout_s=spec.timeout_s, plugin_dirs=spec.plugin_dirs,
                         progress=progress, strict_cash=spec.strict_cash, risk=spec.risk)
    other = None
    if spec.csv is None and spec.market_db is not None:
        other = partial(_other_ticker, Path(spec.market_db), int(data.ts[0]),
                        int(data.ts[-1]) + 60)
    return run_event(info, params, data, first, spec.capital, other=other,
                     slippage_bps=spec.slippage_bps,
                     commission_per_share=spec.commission_per_share, fill=spec.fill,
                     timeout_s=spec.timeout_s, progress=progress,
                     strict_cash=spec.strict_cash, max_timeouts=spec.max_timeouts, **watch)
