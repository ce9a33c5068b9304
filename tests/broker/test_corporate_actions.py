"""Corporate actions through the real alpaca-py (CorporateActionsClient) against the emulator:
a split announced at Alpaca is read, applied once before the ex-date's first tick, and the
algorithms' positions then match Alpaca's."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

import db.corporate as dbc
from app.broker.alpaca import AlpacaBroker
from app.broker.alpaca_clients import corporate_actions_from
from app.engine.facade import Engine
from tests.broker.test_broker import FAST as BROKER_FAST
from tests.fakes.emulator_fixtures import SESSION_NOW
from tests.waiting import wait_until

PLUGINS = Path(__file__).parents[1] / "engine" / "plugins"
FIXTURE = Path(__file__).parents[1] / "fakes" / "fixtures" / "corporate_actions.json"
EX = date(2024, 3, 6)
BEFORE_OPEN = datetime(2024, 3, 6, 14, 0, tzinfo=UTC)  # 09:00 New York on the ex-date


def test_fixture_parses_with_alpaca_py_models_and_ours() -> None:
    from alpaca.data.models.corporate_actions import CorporateActionsSet

    fx = json.loads(FIXTURE.read_text())
    assert fx["source"].startswith("https://docs.alpaca.markets/")
    raw = fx["example"]["corporate_actions"]
    parsed = CorporateActionsSet(raw)  # alpaca-py's own models accept the fixture
    assert parsed.data["forward_splits"][0].new_rate == 10
    ours = {a["kind"]: a for a in corporate_actions_from(raw)}
    assert ours["forward_split"]["ticker"] == "NVDA"
    assert (ours["forward_split"]["new_rate"], ours["forward_split"]["old_rate"]) == (10, 1)
    assert ours["forward_split"]["ex_date"] == "2024-06-10"
    assert ours["reverse_split"]["old_rate"] == 8 and ours["cash_dividend"]["rate"] == 0.25
    assert ours["cash_merger"]["ticker"] == "OLDCO"
    assert ours["cash_merger"]["ex_date"] == "2024-05-01"  # effective_date


def test_emulator_answers_alpaca_py_corporate_actions_client(emulator, settings) -> None:
    item = emulator.schedule_split("NVDA", "2024-03-06", 10)
    emulator.schedule_action("cash_dividends", {
        "symbol": "AAPL", "cusip": "037833100", "rate": 0.24, "special": False,
        "foreign": False, "process_date": "2024-03-08", "ex_date": "2024-03-06",
        "record_date": "2024-03-06", "payable_date": "2024-03-08"})
    broker = AlpacaBroker.from_settings(settings, stream=False, **BROKER_FAST)
    try:
        got = broker.get_corporate_actions(["NVDA", "AAPL"], date(2024, 3, 1), date(2024, 4, 1))
        assert ("GET", "/v1/corporate-actions") in emulator.requests
        by_kind = {a["kind"]: a for a in got}
        assert by_kind["forward_split"]["id"] == item["id"]
        assert by_kind["cash_dividend"]["rate"] == 0.24
        assert broker.get_corporate_actions(["MSFT"], date(2024, 3, 1), date(2024, 4, 1)) == []
        # Bad keys on the data API: 403 (docs: market-data-faq), a BrokerError, not a crash.
        emulator.secret_key = "changed"
        with pytest.raises(Exception, match="403|forbidden"):
            broker.get_corporate_actions(["NVDA"], date(2024, 3, 1), date(2024, 4, 1))
    finally:
        broker.close()


def test_split_at_alpaca_is_applied_once_and_positions_agree(
        emulator, settings, system_store, market_store, calendar, clock) -> None:
    broker = AlpacaBroker.from_settings(settings, **BROKER_FAST)
    e = Engine(mode="paper", system=system_store, market=market_store, broker=broker,
               feed=None, clock=clock, calendar=calendar, plugin_dirs=[PLUGINS])
    try:
        now = int(SESSION_NOW.timestamp())
        market_store.insert_rows([("AAPL", ts, b["o"], b["h"], b["l"], b["c"], b["v"])
                                  for ts in range(now - 600, now + 1, 60)
                                  if (b := emulator.bar("AAPL", ts))])
        raw_close = market_store.latest_price("AAPL")
        e.start()
        algo = e.create_algorithm("scripted", "AAPL", 10_000.0, {"action": "buy", "shares": 10})
        clock.set(SESSION_NOW + timedelta(minutes=1, seconds=2))
        e.run_tick(SESSION_NOW + timedelta(minutes=1))
        assert wait_until(lambda: len(system_store.transactions(algo)) == 1)
        before = e.algorithm_view(algo)
        fill = system_store.transactions(algo)[0]["price"]

        emulator.schedule_split("AAPL", EX.isoformat(), 4)
        clock.set(BEFORE_OPEN)
        assert e.check_corporate_actions(EX) == ["AAPL 4-for-1 split on 2024-03-06"]
        after = e.algorithm_view(algo)
        assert after.position == 40 and after.avg_cost == pytest.approx(fill / 4)
        assert after.cash == pytest.approx(before.cash)
        assert after.pnl == pytest.approx(before.pnl, abs=1e-6)
        assert market_store.latest_price("AAPL") == pytest.approx(raw_close / 4)
        # Alpaca split its position too: the watch finds nothing to pause.
        assert broker.get_positions() == {"AAPL": 40.0}
        assert e.watch_positions(BEFORE_OPEN) == []
        assert e.algorithm_view(algo).status == "running"
        # A second check the same day (a restart) reads Alpaca again and applies nothing.
        e._ca_day = None
        assert e.check_corporate_actions(EX) == []
        assert len(dbc.events(system_store, algo)) == 1
    finally:
        e.close()


def test_a_merger_at_alpaca_pauses_the_ticker(emulator, settings, system_store, market_store,
                                              calendar, clock) -> None:
    broker = AlpacaBroker.from_settings(settings, **BROKER_FAST)
    e = Engine(mode="paper", system=system_store, market=market_store, broker=broker,
               feed=None, clock=clock, calendar=calendar, plugin_dirs=[PLUGINS])
    try:
        e.start()
        algo = e.create_algorithm("scripted", "MSFT", 1_000.0)
        emulator.schedule_action("stock_mergers", {
            "acquirer_symbol": "AAPL", "acquirer_cusip": "037833100", "acquirer_rate": 0.5,
            "acquiree_symbol": "MSFT", "acquiree_cusip": "594918104", "acquiree_rate": 1,
            "process_date": "2024-03-06", "effective_date": "2024-03-06",
            "payable_date": "2024-03-06"})
        clock.set(BEFORE_OPEN)
        e.check_corporate_actions(EX)
        v = e.algorithm_view(algo)
        assert v.status == "paused" and "stock merger" in v.error
    finally:
        e.close()
