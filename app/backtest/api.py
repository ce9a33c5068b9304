"""Backtests for other parts of the app (the UI's new-algorithm flow): plain calls, no CLI.

Call from a worker thread, never the GUI thread. Off the main thread a plugin call that hangs
cannot be interrupted (see ``watchdog.py``); overruns are still refused.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from app.backtest.errors import BacktestError
from app.backtest.replay import Progress
from app.backtest.report import report_dict
from app.backtest.result import RunResult
from app.backtest.run import Spec, load_bars, open_market, run
from db.calendar import nyse

logger = logging.getLogger(__name__)


def recent_spec(settings: Any, plugin: str, ticker: str, *, days: int, capital: float,
                params: dict[str, Any] | None = None, market_db: Path | None = None) -> Spec:
    """A spec over the last ``days`` sessions the market DB holds for ``ticker``."""
    if days < 1:
        raise BacktestError(f"days must be at least 1, got {days}")
    path = Path(market_db or settings.market_db_path)
    if not path.exists():
        raise BacktestError(f"no market DB at {path}")
    store = open_market(path)
    try:
        last = store.latest_ts(ticker)
    finally:
        store.close()
    if last is None:
        raise BacktestError(f"the market DB has no bars for {ticker} yet")
    from db.timeutil import from_epoch

    cal = nyse()
    end_session = cal.session_at(from_epoch(last))
    end: date = end_session.day if end_session else cal.previous_session(from_epoch(last)).day
    sessions = cal.sessions_before(cal.session_on(end).close, days)
    engine = settings.engine
    return Spec(plugin=plugin, ticker=ticker, capital=float(capital), start=sessions[0].day,
                end=end, params=dict(params or {}), market_db=path,
                plugin_dirs=tuple(settings.plugin_dirs), slippage_bps=engine.slippage_bps,
                commission_per_share=engine.commission_per_share,
                timeout_s=engine.plugin_timeout)


def backtest_recent(settings: Any, plugin: str, ticker: str, *, days: int = 5,
                    capital: float = 10_000.0, params: dict[str, Any] | None = None,
                    progress: Progress | None = None) -> tuple[RunResult, dict[str, Any]]:
    """Run ``plugin`` on the last ``days`` sessions; return the result and the report dict
    (the same figures as the CLI's report.json). Raises ``BacktestError`` with a message fit
    to show."""
    spec = recent_spec(settings, plugin, ticker, days=days, capital=capital, params=params)
    try:
        data = load_bars(spec)
    except BacktestError as e:
        # The oldest sessions may be missing: run on what there is rather than fail.
        if "before the data" not in str(e):
            raise
        spec = replace(spec, start=None)
        data = load_bars(spec)
    result = run(spec, data, progress=progress)
    return result, report_dict(result)
