"""Corporate actions on the real engine, simulated broker and SQLite files: splits rescale the
ledgers and the stored bars once (P&L unchanged), dividends are cash, other actions pause."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta

import pytest

import db
import db.corporate as dbc
from app.broker.sim_corporate import SimCorporateActions, parse_split
from app.engine.ledger import Ledger
from tests.engine.conftest import T0, put_bars

EX = date(2024, 6, 5)  # Wednesday, the session after T0's
EX_OPEN = datetime(2024, 6, 5, 13, 30, tzinfo=UTC)  # 09:30 New York


def buy(engine, ticker, shares, capital=5000.0, plugin="seed_seesaw"):
    """An algorithm that buys ``shares`` at T0 (price 100) and then, seed-style, sells all it
    holds (its position read from get_transactions)."""
    a = engine.create_algorithm(plugin, ticker, capital, {"shares": shares})
    engine.clock.set(T0 + timedelta(seconds=2))
    r = engine.run_tick(T0)
    assert [(f["algo_id"], f["shares"]) for f in r.fills] == [(a, shares)]
    return a


def schedule(system, market, ticker, new, old=1.0, day=EX):
    return SimCorporateActions(system, market).schedule_split(ticker, day.isoformat(), new, old)


def post_split_bars(market, calendar, ticker, price):
    put_bars(market, ticker, price, EX_OPEN, EX_OPEN + timedelta(minutes=5), calendar)


def test_forward_split_rescales_position_cost_and_bars_with_pnl_unchanged(
        make_engine, system_store, market_store, calendar, clock):
    e = make_engine()
    a = buy(e, "AAA", 10)
    before = e.algorithm_view(a)
    assert (before.position, before.avg_cost, before.last_price) == (10, 100.0, 100.0)
    schedule(system_store, market_store, "AAA", 10)

    clock.set(EX_OPEN - timedelta(minutes=20))
    applied = e.check_corporate_actions(EX)
    assert applied == ["AAA 10-for-1 split on 2024-06-05"]
    after = e.algorithm_view(a)
    assert after.position == 100 and after.avg_cost == pytest.approx(10.0)
    assert after.last_price == pytest.approx(10.0)  # the stored bars were adjusted
    assert after.cash == pytest.approx(before.cash)
    for k in ("value", "pnl", "realised", "unrealised"):
        assert getattr(after, k) == pytest.approx(getattr(before, k), abs=1e-9), k
    # Bars before the ex-date were scaled once, volume inverse.
    rows = market_store.bars_between("AAA", int(T0.timestamp()) - 120, int(T0.timestamp()))
    assert rows and all(r[4] == pytest.approx(10.0) and r[5] == 10_000 for r in rows)
    # The broker's side split too: the position watch sees no difference.
    assert e.broker.get_positions() == {"AAA": 100}
    assert system_store.positions_by_ticker() == {"AAA": 100}
    assert e.watch_positions(EX_OPEN) == []
    # The history shows the split as an event of its own.
    h = e.history(a)
    assert [(x["kind"], x["type"]) for x in h] == [("trade", "buy"), ("event", "split")]
    ev = h[1]
    assert (ev["shares_before"], ev["shares_after"], ev["shares"], ev["old_rate"],
            ev["new_rate"]) == (10, 100, 90, 1.0, 10.0)
    assert ev["avg_cost"] == pytest.approx(10.0) and "10 -> 100 shares" in ev["note"]
    # Seed plugins: get_transactions adds a zero-price buy of the difference, nothing else.
    seed = db.StoreProvider(system_store, market_store).transactions(a)
    assert [(t["type"], t["shares"], t["price"], t.get("event")) for t in seed] == \
        [("buy", 10, 100.0, None), ("buy", 90, 0.0, "split")]
    assert system_store.transactions(a)[-1]["type"] == "buy"  # the raw table: buys/sells
    # The seed-style plugin now sells all 100 (not 10) on the ex-date.
    post_split_bars(market_store, calendar, "AAA", 10.0)
    clock.set(EX_OPEN + timedelta(minutes=1, seconds=2))
    r = e.run_tick(EX_OPEN + timedelta(minutes=1))
    assert [(f["type"], f["shares"]) for f in r.fills] == [("sell", 100)]
    assert e.algorithm_view(a).position == 0
    assert e.broker.get_positions() == {}


def test_apply_is_idempotent_across_restarts_and_the_ledger_replays(
        make_engine, system_store, market_store, clock):
    e = make_engine()
    a = buy(e, "AAA", 10)
    schedule(system_store, market_store, "AAA", 2)
    clock.set(EX_OPEN - timedelta(minutes=20))
    assert e.check_corporate_actions(EX)
    e.close()
    for _ in range(2):  # restarts on the ex-date: nothing is applied twice
        e2 = make_engine()
        assert e2.check_corporate_actions(EX) == []
        v = e2.algorithm_view(a)
        assert (v.position, v.avg_cost) == (20, pytest.approx(50.0))
        assert len(dbc.events(system_store, a)) == 1
        assert e2.broker.get_positions() == {"AAA": 20}
        e2.close()
    rows = market_store.bars_between("AAA", int(T0.timestamp()) - 60, int(T0.timestamp()))
    assert rows[0][4] == pytest.approx(50.0)  # scaled once, not twice


def test_a_failure_mid_apply_leaves_nothing_half_done(make_engine, system_store,
                                                      market_store, clock, monkeypatch):
    e = make_engine()
    a = buy(e, "AAA", 10)
    schedule(system_store, market_store, "AAA", 3, 2)

    def boom(*args, **kw):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(dbc, "mark_applied", boom)
    clock.set(EX_OPEN - timedelta(minutes=20))
    assert e.check_corporate_actions(EX) == []
    assert dbc.events(system_store) == [] and e.algorithm_view(a).position == 10
    monkeypatch.undo()
    e._ca_day = None
    assert e.check_corporate_actions(EX) == ["AAA 3-for-2 split on 2024-06-05"]
    assert e.algorithm_view(a).position == 15


def test_kill_9_mid_apply_then_restart_applies_once(make_engine, system_store, market_store,
                                                    data_dir, clock):
    e = make_engine()
    a = buy(e, "AAA", 10)
    schedule(system_store, market_store, "AAA", 10)
    e.close()
    # Another process applies the split and is killed (SIGKILL) just before it commits.
    script = textwrap.dedent(f"""
        import os, signal
        from datetime import date, datetime, timezone
        import db.corporate as dbc
        from app.broker.simulated import SimulatedBroker
        from db.calendar import nyse
        from app.clock import ManualClock
        from app.engine.facade import Engine
        from db.market import MarketStore
        from db.system import SystemStore
        cal = nyse()
        s, m = SystemStore({str(data_dir / 'system.db')!r}), MarketStore({str(data_dir / 'market.db')!r}, cal)
        clock = ManualClock(datetime(2024, 6, 5, 13, 10, tzinfo=timezone.utc))
        e = Engine(mode="demo", system=s, market=m, broker=SimulatedBroker(s, m, clock, calendar=cal),
                   feed=None, clock=clock, calendar=cal)
        real = dbc.mark_applied
        def die(*a, **k):
            real(*a, **k)
            os.kill(os.getpid(), signal.SIGKILL)
        dbc.mark_applied = die
        e.check_corporate_actions(date(2024, 6, 5))
    """)
    p = subprocess.run([sys.executable, "-c", script], cwd=os.getcwd(), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert dbc.events(system_store) == []  # the transaction died with the process
    clock.set(EX_OPEN - timedelta(minutes=20))
    e2 = make_engine()  # start applies it, once
    assert e2.algorithm_view(a).position == 100
    assert len(dbc.events(system_store, a)) == 1
    assert e2.check_corporate_actions(EX) == []
    assert e2.broker.get_positions() == {"AAA": 100}


@pytest.mark.parametrize(("held", "new", "old", "whole", "frac"), [
    (3, 3, 2, 4, 0.5),      # forward 3-for-2: 4.5 shares
    (15, 1, 10, 1, 0.5),    # reverse 1-for-10: 1.5 shares
    (5, 1, 10, 0, 0.5),     # reverse: less than one share left
])
def test_fractions_are_paid_in_cash_and_total_pnl_is_unchanged(
        make_engine, system_store, market_store, clock, held, new, old, whole, frac):
    e = make_engine()
    a = buy(e, "AAA", held)
    before = e.algorithm_view(a)
    schedule(system_store, market_store, "AAA", new, old)
    clock.set(EX_OPEN - timedelta(minutes=20))
    e.check_corporate_actions(EX)
    after = e.algorithm_view(a)
    price = 100.0 * old / new
    assert after.position == whole and after.last_price == pytest.approx(price)
    cil = round(frac * price, 2)
    assert after.cash == pytest.approx(before.cash + cil)
    assert after.pnl == pytest.approx(before.pnl, abs=0.01)
    assert after.realised + after.unrealised == pytest.approx(after.pnl, abs=1e-9)
    h = e.history(a)
    assert [x["type"] for x in h] == ["buy", "split", "cash_in_lieu"]
    assert h[2]["fraction"] == pytest.approx(frac) and h[2]["cash"] == pytest.approx(cil)
    # Replaying the DB gives the same ledger as the one in memory.
    led = Ledger.from_transactions(5000.0, system_store.transactions(a),
                                   dbc.events(system_store, a))
    assert (led.position, led.cash) == (after.position, pytest.approx(after.cash))
    assert e.broker.get_positions().get("AAA", 0) == whole


def test_cash_dividend_is_paid_to_holders_only(make_engine, system_store, market_store, clock):
    e = make_engine()
    holder = buy(e, "AAA", 10)
    other = e.create_algorithm("scripted", "AAA", 1000.0)  # holds nothing
    SimCorporateActions(system_store, market_store).schedule(
        {"id": "div-1", "ticker": "AAA", "kind": "cash_dividend", "ex_date": EX.isoformat(),
         "rate": 0.25})
    before = e.algorithm_view(holder)
    clock.set(EX_OPEN - timedelta(minutes=20))
    assert e.check_corporate_actions(EX) == ["AAA cash dividend $0.25/share, ex 2024-06-05"]
    after = e.algorithm_view(holder)
    assert after.cash == pytest.approx(before.cash + 2.5)
    assert after.realised == pytest.approx(before.realised + 2.5)
    assert after.pnl == pytest.approx(before.pnl + 2.5)
    assert e.history(holder)[-1]["type"] == "dividend"
    assert dbc.events(system_store, other) == []
    assert e.broker.get_account().cash == pytest.approx(100_000 - 1000 + 2.5)


def test_a_merger_pauses_the_ticker_until_resumed_even_across_a_restart(
        make_engine, system_store, market_store, clock):
    e = make_engine()
    a = buy(e, "AAA", 10)
    b = e.create_algorithm("scripted", "BBB", 1000.0)
    SimCorporateActions(system_store, market_store).schedule(
        {"id": "m-1", "ticker": "AAA", "kind": "cash_merger", "ex_date": EX.isoformat(),
         "rate": 120.0, "detail": {"acquirer_symbol": "ZZZ"}})
    clock.set(EX_OPEN - timedelta(minutes=20))
    e.check_corporate_actions(EX)
    v = e.algorithm_view(a)
    assert v.status == "paused" and "cash merger" in v.error and "acquirer_symbol ZZZ" in v.error
    assert e.algorithm_view(b).status == "running"
    clock.set(EX_OPEN + timedelta(seconds=2))
    r = e.run_tick(EX_OPEN)
    assert "cash merger" in r.errors[a] and not r.fills
    e.close()
    e2 = make_engine()
    assert e2.algorithm_view(a).status == "paused"
    e2.resume_algorithm(a)
    assert e2.algorithm_view(a).status == "running"
    e2.close()
    e3 = make_engine()
    assert e3.algorithm_view(a).status == "running"


def test_backfilled_bars_of_old_minutes_are_scaled_as_they_are_stored(
        make_engine, system_store, market_store, calendar, clock):
    e = make_engine()
    buy(e, "AAA", 10)
    schedule(system_store, market_store, "AAA", 4)
    clock.set(EX_OPEN - timedelta(minutes=20))
    e.check_corporate_actions(EX)
    old = datetime(2024, 5, 31, 14, 0, tzinfo=UTC)  # a raw bar fetched later
    put_bars(market_store, "AAA", 80.0, old, old + timedelta(minutes=1), calendar)
    post_split_bars(market_store, calendar, "AAA", 25.0)  # after the ex-date: as it comes
    assert market_store.bars_between("AAA", int(old.timestamp()), int(old.timestamp()) + 60)[0][4] \
        == pytest.approx(20.0)
    assert market_store.latest_price("AAA") == pytest.approx(25.0)


def test_parse_split_option():
    assert parse_split("NVDA:2024-06-10:10") == ("NVDA", "2024-06-10", 10.0, 1.0)
    assert parse_split("GE:2021-08-02:1:8") == ("GE", "2021-08-02", 1.0, 8.0)
    assert parse_split("aapl:2020-08-31:4-1") == ("AAPL", "2020-08-31", 4.0, 1.0)
    for bad in ("NVDA:2024-06-10", "NVDA:2024-13-01:2", "NVDA:2024-06-10:0", "NVDA:2024-06-10:x"):
        with pytest.raises(ValueError):
            parse_split(bad)
