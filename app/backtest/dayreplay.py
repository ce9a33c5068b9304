"""``autotrader run --replay DATE``: the whole app (window or headless) over one stored day.

The day's bars come from the configured market DB (``autotrader data fetch`` fills it) and
arrive minute by minute on the demo's accelerated clock; orders go to the simulated broker.
Everything runs in a data folder of its own, ``<data folder>/replays/DATE-N`` (a new one per
run, so each replay starts at the open with the full demo cash, and nothing of the paper or
live folder is touched): the way to watch a plugin trade a real day before giving it money.
This module checks the request and prepares the folder; ``app.marketdata.replay`` is the feed.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

from app.backtest.errors import BacktestError
from app.config import Settings
from app.marketdata.replay import ReplaySource, write_marker
from app.security import PIN_HASH_KEY
from db.calendar import MarketCalendar, nyse
from db.market import MarketStore
from db.system import SystemStore

DEMO_ALGORITHMS = 3  # tickers that get the demo's SMA algorithm when none is configured


def parse_day(text: str, calendar: MarketCalendar) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BacktestError(f"--replay {text!r}: give a date as YYYY-MM-DD") from None
    if calendar.session_on(day) is None:
        raise BacktestError(f"--replay {day}: the NYSE had no session that day (a weekend "
                            "or a holiday)")
    return day


def tickers_on(store: MarketStore, calendar: MarketCalendar, day: date) -> list[str]:
    """The tickers with at least one bar in the day's session."""
    s = calendar.session_on(day)
    assert s is not None
    lo, hi = int(s.open.timestamp()), int(s.close.timestamp())
    return [t for t in store.tickers() if store.bars_between(t, lo, hi)]


def new_folder(base: Path, day: date) -> Path:
    n = 1
    while (base / f"{day.isoformat()}-{n}").exists():
        n += 1
    return base / f"{day.isoformat()}-{n}"


def _same_pin(source: Path, target: Path) -> None:
    """The replay unlocks with the PIN of the folder it came from (its hash, copied), instead
    of asking for a new PIN at every replay."""
    if not source.exists():
        return
    src = SystemStore(source, readonly=True)
    try:
        pin_hash = src.get_setting(PIN_HASH_KEY)
    finally:
        src.close()
    if pin_hash:
        dst = SystemStore(target)
        try:
            dst.set_setting(PIN_HASH_KEY, pin_hash)
        finally:
            dst.close()


def prepare_replay(settings: Settings, text: str) -> tuple[Settings, int]:
    """The settings to run the replay with (demo mode in a new folder) and the session's
    length in minutes (a headless replay stops after the close)."""
    calendar = nyse()
    day = parse_day(text, calendar)
    source = settings.market_db_path
    if not source.exists():
        raise BacktestError(f"--replay: no market DB at {source}; fetch the day first "
                            f"(autotrader data fetch TICKER --start {day} --end {day})")
    store = MarketStore(source, calendar, readonly=True)
    try:
        have = tickers_on(store, calendar, day)
        known = store.tickers()
    finally:
        store.close()
    if not have:
        listed = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "") or "none"
        raise BacktestError(f"--replay {day}: the market DB {source} has no bars that day "
                            f"(tickers stored: {listed}); fetch them first with autotrader "
                            f"data fetch TICKER --start {day} --end {day}")
    folder = new_folder(settings.data_path / "replays", day)
    write_marker(folder, ReplaySource(day, source))
    _same_pin(settings.system_db_path, folder / "system.db")
    wanted = [t for t in settings.demo.tickers if t in have] or have[:DEMO_ALGORITHMS]
    session = calendar.session_on(day)
    assert session is not None
    minutes = int((session.close - session.open).total_seconds() // 60)
    return replace(settings, mode="demo", data_dir=str(folder),
                   demo=replace(settings.demo, start_date=day.isoformat(),
                                tickers=tuple(wanted))), minutes
