"""The demo's promise: a new user sees the demo algorithms trade within minutes of the open,
whatever day the demo starts on (the real engine, synthetic market and simulated broker)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.broker.simulated import SimulatedBroker
from app.clock import ManualClock
from app.engine.facade import Engine
from app.marketdata.synthetic import SyntheticFeed
from db.market import MarketStore
from db.system import SystemStore


@pytest.mark.parametrize("day", [date(2024, 1, 3), date(2024, 3, 11), date(2024, 7, 5),
                                 date(2024, 11, 29), date(2025, 2, 18), date(2025, 6, 2)])
def test_demo_algorithms_trade_within_twenty_minutes_of_the_open(tmp_path, calendar, day):
    session = calendar.session_on(day)
    clock = ManualClock(session.open)
    market = MarketStore(tmp_path / "market.db", calendar)
    system = SystemStore(tmp_path / "system.db")
    feed = SyntheticFeed(market, clock, calendar, seed=42)
    broker = SimulatedBroker(system, market, clock, calendar=calendar)
    engine = Engine(mode="demo", system=system, market=market, broker=broker, feed=feed,
                    clock=clock, calendar=calendar, before_tick=feed.ensure_until)
    try:
        for t in ("AAPL", "MSFT", "NVDA"):
            engine.create_algorithm("sma_crossover", t, 20_000, name=f"Demo SMA {t}")
        engine.start()
        first_fill = None
        for i, minute in enumerate(session.minutes()[:20]):
            clock.set(minute + timedelta(seconds=2))
            r = engine.run_tick(minute)
            assert len(r.decisions) == 3 and not r.errors
            if r.fills:
                first_fill = i
                break
        assert first_fill is not None, f"no demo trade in the first 20 minutes of {day}"
    finally:
        engine.close()
        system.close()
        market.close()
