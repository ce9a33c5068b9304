"""Today's P&L in the header is the account's change since the previous close, as the broker
values it (Alpaca's ``last_equity``); the simulated broker gives the same field."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from app.broker.base import OrderRequest
from app.broker.simulated import SimulatedBroker
from app.clock import ManualClock
from app.ui.header import HeaderViewModel
from db.market import MarketStore
from db.system import SystemStore


def _bars(market: MarketStore, session, price: float) -> None:
    t0 = int(session.open.timestamp())
    market.insert_rows([("AAPL", t0 + 60 * i, price, price, price, price, 100)
                        for i in range(390)])


def test_simulated_last_equity_is_the_previous_close(tmp_path, calendar, qapp) -> None:
    d1 = calendar.session_on(date(2024, 6, 4))
    d2 = calendar.session_on(date(2024, 6, 5))
    market = MarketStore(tmp_path / "market.db", calendar)
    system = SystemStore(tmp_path / "system.db")
    _bars(market, d1, 100.0)
    _bars(market, d2, 110.0)
    clock = ManualClock(d1.open + timedelta(minutes=30))
    broker = SimulatedBroker(system, market, clock, starting_cash=10_000.0, slippage_bps=0.0,
                             commission_per_share=0.01, calendar=calendar)
    assert broker.get_account().last_equity == pytest.approx(10_000.0)  # day 1: the deposit
    broker.submit_order(OrderRequest("a1", "AAPL", "buy", 10))  # at 100, 0.10 commission
    clock.set(d2.open + timedelta(minutes=60))  # next day: AAPL at 110
    broker.submit_order(OrderRequest("a2", "AAPL", "buy", 5))  # today's fill: undone
    acct = broker.get_account()
    # Previous close: 9,000 - 0.10 cash + 10 shares at 100.
    assert acct.last_equity == pytest.approx(9_999.90)
    assert acct.equity == pytest.approx(10_000 - 1_000.10 - 550.05 + 15 * 110.0)
    header = HeaderViewModel(None, None, "demo")
    header.set_today(-3.0, 5_000.0)  # the algorithms own figure: not shown beside the broker
    header.set_account({"equity": acct.equity, "last_equity": acct.last_equity})
    assert header.todayLabel == "Today"
    assert header.todayText == "+$99.95 \u00b7 +1.00%"
    assert header.todaySign == 1


def test_without_last_equity_the_header_says_whose_figure_it_is(qapp) -> None:
    header = HeaderViewModel(None, None, "paper")
    assert header.todayText == "\u2014" and header.todayLabel == "Today"
    header.set_today(-25.0, 5_000.0)
    header.set_account({"equity": 100_000.0, "last_equity": None})
    assert header.todayLabel == "Algos today"
    assert header.todayText == "\u2212$25.00 \u00b7 \u22120.50%"
    header.set_account({"error": "unreachable"})
    assert header.todayLabel == "Algos today"
