"""The stream's per-ticker state reaches the engine (real AlpacaStream + emulator): a halted
ticker holds and no order leaves, a refused symbol says why, a stale ticker says "no bar",
and trade updates of another install's orders are ignored."""

from __future__ import annotations

from datetime import timedelta

from app.broker.base import OrderUpdate
from app.engine.intake import STALE_BAR_MINUTES
from tests.engine.alpaca import test_engine_integration as _integration
from tests.fakes.emulator_fixtures import SESSION_NOW
from tests.waiting import wait_until

make_engine = _integration.make_engine  # the same fixture: engine + AlpacaStream + emulator


def test_a_halted_ticker_holds_and_sends_nothing(make_engine, emulator, clock) -> None:
    e = make_engine()
    e.start()
    algo = e.create_algorithm("scripted", "NVDA", 5_000.0, {"action": "buy", "shares": 1})
    assert wait_until(lambda: emulator.subscribed() == {"NVDA"})
    emulator.halt("NVDA")
    assert wait_until(lambda: e.feed.is_halted("NVDA"))
    clock.set(SESSION_NOW + timedelta(minutes=1, seconds=2))
    r = e.run_tick(SESSION_NOW + timedelta(minutes=1))
    assert r.errors[algo].startswith("holding: NVDA halted")
    assert emulator.order_posts == 0
    assert "halted" in e.algorithm_view(algo).error
    # Right before sending, the same check (an order planned before the halt came in).
    assert e._halted_reason("NVDA").startswith("not sent: NVDA halted (")
    emulator.resume("NVDA")
    assert wait_until(lambda: not e.feed.is_halted("NVDA"))
    assert e._halted_reason("NVDA") is None


def test_stale_and_missing_bars_show_on_the_card(make_engine, emulator, market_store,
                                                 clock) -> None:
    e = make_engine()
    e.start()
    algo = e.create_algorithm("scripted", "MSFT", 5_000.0)
    assert wait_until(lambda: emulator.subscribed() == {"MSFT"})
    newest = market_store.latest_ts("MSFT")
    assert newest is not None
    late = SESSION_NOW + timedelta(minutes=STALE_BAR_MINUTES + 1)
    clock.set(late + timedelta(seconds=2))
    r = e.run_tick(late)
    age = (int(late.timestamp()) - newest) // 60
    assert age >= STALE_BAR_MINUTES
    assert r.errors[algo].endswith(f"no bar for {age} min")


def test_a_refused_symbol_says_why(make_engine, emulator, clock) -> None:
    emulator.faults.symbol_limit = 1
    e = make_engine()
    e.start()
    e.create_algorithm("scripted", "AAPL", 1_000.0)
    second = e.create_algorithm("scripted", "MSFT", 1_000.0)
    assert wait_until(lambda: e.feed.ticker_status("MSFT").state == "refused")
    clock.set(SESSION_NOW + timedelta(minutes=1, seconds=2))
    r = e.run_tick(SESSION_NOW + timedelta(minutes=1))
    assert r.errors[second].startswith("holding: the market data stream refused MSFT")


def test_updates_of_another_installs_orders_are_ignored(make_engine, emulator) -> None:
    e = make_engine()
    e.start()
    seen = []
    e._record_update = seen.append  # what would be recorded
    e._on_order_update(OrderUpdate("atzzzz-1-20240305150000", "filled", "AAPL", "buy", 1))
    e._on_order_update(OrderUpdate(f"{e.orders.prefix}-1-20240305150000", "filled", "AAPL",
                                   "buy", 1))
    assert [u.client_order_id.split("-")[0] for u in seen] == [e.orders.prefix]
