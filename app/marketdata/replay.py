"""A stored day again: the demo's feed, serving minute bars from a market DB instead of a
random walk (``autotrader run --replay DATE``, prepared by ``app.backtest.dayreplay``).

The replay's data folder holds ``replay.json`` (the day and the source market DB). Its feed
writes each minute's bar into the replay's own market DB once the simulated clock has passed
that minute, exactly as the synthetic feed does, so the engine, the simulated broker and the
window run their demo code paths unchanged. The sessions before the day are history (written
at the start, as the demo's); nothing comes after the day. The source DB is opened read-only.

A split in the middle of a replay: the stored bars are on one price basis (the market DB's
bars are split-adjusted, ``db.corporate``). A split scheduled with ``[demo] splits`` is
replayed as the demo's synthetic market shows one (and as Alpaca's raw bars have it): from its
ex-date on, prices are divided by the ratio and volumes multiplied; the simulated market
announces it and the engine applies it before the ex-date's first tick (history rescaled,
positions split), so charts, the plugins' history and P&L show no cliff. Without that, the
engine would rescale the history of a split the replayed prices never had.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from app.clock import Clock
from app.marketdata.base import FeedStatus
from app.marketdata.synthetic import SyntheticFeed
from db.calendar import MarketCalendar, Session
from db.market import MarketStore

logger = logging.getLogger(__name__)

MARKER = "replay.json"
HISTORY_SESSIONS = 5  # the sessions before the day written as history (plugins' look-back)


@dataclass(frozen=True)
class ReplaySource:
    day: date
    market_db: Path


def replay_source(data_path: Path) -> ReplaySource | None:
    """The replay a data folder was made for, or None for an ordinary demo folder."""
    path = Path(data_path) / MARKER
    if not path.exists():
        return None
    d = json.loads(path.read_text(encoding="utf-8"))
    return ReplaySource(date.fromisoformat(d["day"]), Path(d["market_db"]))


def write_marker(data_path: Path, source: ReplaySource) -> None:
    Path(data_path).mkdir(parents=True, exist_ok=True)
    (Path(data_path) / MARKER).write_text(
        json.dumps({"day": source.day.isoformat(), "market_db": str(source.market_db)}) + "\n",
        encoding="utf-8")


class ReplayFeed(SyntheticFeed):
    """``SyntheticFeed`` whose sessions are the stored ones, up to and including the day."""

    def __init__(self, market: MarketStore, clock: Clock, calendar: MarketCalendar,
                 source: ReplaySource,
                 splits: Iterable[tuple[str, str, float, float]] = ()) -> None:
        super().__init__(market, clock, calendar, history_sessions=HISTORY_SESSIONS,
                         splits=splits)
        self.source = source
        self._store = MarketStore(source.market_db, calendar, readonly=True)
        self._status = FeedStatus("simulated", f"REPLAY of {source.day.isoformat()} "
                                               f"({source.market_db})")

    @property
    def replay_day(self) -> str:
        """The replayed date (YYYY-MM-DD), for what the app shows beside its mode."""
        return self.source.day.isoformat()

    split_decimals = None  # stored prices divided by the ratio as they are, not rounded

    def _continuous(self, ticker: str, session: Session) -> np.ndarray:
        """The stored bars of one session (none after the replayed day); ``session_bars``
        turns them into raw prices after the scheduled splits in force that day."""
        if session.day > self.source.day:
            return np.zeros((0, 6))
        rows = self._store.bars_between(ticker, int(session.open.timestamp()),
                                        int(session.close.timestamp()))
        return np.asarray(rows, dtype=np.float64).reshape(-1, 6)

    def stop(self) -> None:
        super().stop()
        self._store.close()
