"""The demo option ``demo.splits`` (issue 11): a scheduled split seen end to end in the demo.

The synthetic market prints raw prices (a 10x cliff on the ex-date, as Alpaca's raw history
has), the simulated schedule announces the split, and the engine applies it before the first
tick of the ex-date: the stored history is rescaled, so the chart and the plugins see no
cliff. Real engine, synthetic feed, simulated broker, SQLite files."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.broker.simulated import SimulatedBroker
from app.clock import ManualClock
from app.config import ConfigError, load_settings
from app.engine.facade import Engine, EngineError
from app.engine.runner import demo_splits
from app.marketdata.synthetic import SyntheticFeed
from db.market import MarketStore
from db.system import SystemStore

EX = date(2024, 6, 10)


def settings_with(tmp_path, splits: list[str]):
    return load_settings(path=tmp_path / "absent.toml", env={},
                         overrides={"mode": "demo", "data_dir": str(tmp_path / "data"),
                                    "demo.splits": splits})


def test_bad_split_text_is_refused_with_the_expected_form(tmp_path) -> None:
    with pytest.raises(ConfigError, match="TICKER:YYYY-MM-DD:RATIO"):
        settings_with(tmp_path, ["NVDA-2024-06-10"])
    s = settings_with(tmp_path, ["NVDA:2024-06-10:10:10"])  # same rates: caught when parsed
    system = SystemStore(tmp_path / "s.db")
    try:
        with pytest.raises(EngineError, match="demo.splits"):
            demo_splits(s, system, None)  # type: ignore[arg-type]
    finally:
        system.close()


def test_scheduled_split_cliff_in_raw_prices_none_after_the_engine(tmp_path, calendar) -> None:
    before = calendar.sessions_before(calendar.session_on(EX).open, 1)[0]
    ex = calendar.session_on(EX)
    market = MarketStore(tmp_path / "market.db", calendar)
    system = SystemStore(tmp_path / "system.db")
    splits = demo_splits(settings_with(tmp_path, ["NVDA:2024-06-10:10"]), system, market)
    assert splits == [("NVDA", "2024-06-10", 10.0, 1.0)]
    clock = ManualClock(before.open + timedelta(minutes=5, seconds=2))
    feed = SyntheticFeed(market, clock, calendar, seed=42, splits=splits)
    plain = SyntheticFeed(MarketStore(tmp_path / "plain.db", calendar), clock, calendar, seed=42)
    # Raw prices: a tenth from the ex-date on, ten times the volume; the day before unchanged.
    assert (feed.session_bars("NVDA", before) == plain.session_bars("NVDA", before)).all()
    raw, cont = feed.session_bars("NVDA", ex), plain.session_bars("NVDA", ex)
    assert abs(raw[0, 1] - cont[0, 1] / 10) <= 0.01 and raw[0, 5] >= 9 * cont[0, 5]
    assert (feed.session_bars("MSFT", ex) == plain.session_bars("MSFT", ex)).all()

    broker = SimulatedBroker(system, market, clock, calendar=calendar)
    engine = Engine(mode="demo", system=system, market=market, broker=broker, feed=feed,
                    clock=clock, calendar=calendar, before_tick=feed.ensure_until)
    try:
        engine.create_algorithm("sma_crossover", "NVDA", 20_000, name="Demo SMA NVDA")
        engine.start()
        for minute in before.minutes()[:5]:
            clock.set(minute + timedelta(seconds=2))
            engine.run_tick(minute)
        last_before = before.minutes()[4]
        raw_close = market.bars_between("NVDA", int(last_before.timestamp()),
                                        int(last_before.timestamp()) + 60)[0][4]
        first = ex.minutes()[0]
        clock.set(first + timedelta(seconds=2))
        engine.run_tick(first)
        # The ex-date's first tick applied the split: the stored past is rescaled once.
        ts0 = int(before.open.timestamp())
        rows = market.bars_between("NVDA", ts0, int(ex.open.timestamp()) + 60)
        assert abs(rows[4][4] - raw_close / 10) <= 0.01
        gap = rows[-1][1] / rows[-2][4]  # the ex-date's first open / the last stored close
        assert 0.9 < gap < 1.1, gap
        older = market.bars_between("NVDA", ts0 - 3 * 86400, ts0)
        assert older and max(r[4] for r in older) < 2 * rows[-1][4]  # history scaled too
    finally:
        engine.close()
        system.close()
        market.close()
