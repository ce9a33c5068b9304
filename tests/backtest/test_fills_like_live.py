"""Fills like live: one fill model (``app.broker.fill_model``) for the demo's simulated broker,
the fast replay and ``--exact``. A buy the engine accepted at decision time (its cost at the
last close within the algorithm's cash) fills at the fill price even when that overdraws the
algorithm's cash by the move, as live and in the demo where the account pays; the report
shows the largest overdraft; ``strict_cash`` refuses those buys instead."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.backtest.exact import run_exact
from app.backtest.replay import run_event
from app.backtest.run import resolve_plugin
from app.broker.base import OrderRequest
from app.broker.fill_model import FillModel, fill_price, refusal
from app.broker.simulated import SimulatedBroker, last_close
from app.clock import ManualClock
from db.timeutil import from_epoch
from tests.backtest.conftest import PLUGINS

CAPITAL = 10_000.0
KEYS = ("i", "ts", "type", "shares", "price", "commission")


def _rows(r):
    return [tuple(f[k] for k in KEYS) for f in r.fills]


def test_the_model_prices_and_refuses():
    assert fill_price("buy", 100.0, 5.0) == 100.05
    assert fill_price("sell", 100.0, 5.0) == 99.95
    m = FillModel("close", 5.0, 0.01)
    assert m.commission(10) == pytest.approx(0.1)
    assert m.base(None, 99.0) == 99.0 and FillModel("open").base(98.0, 99.0) == 98.0
    assert FillModel("open").base(None, 99.0) == 99.0  # no bar this minute: the last close
    assert refusal("sell", 5, 10.0, 0.0, 1e9, 4).startswith("insufficient qty")
    assert refusal("buy", 10, 10.0, 0.0, 99.0, 0).startswith("insufficient buying power")
    assert refusal("buy", 10, 10.0, 0.0, 100.0, 0) == ""
    assert refusal("buy", 1, None, 0.0, 100.0, 0) == "no market price"
    assert m.payer_cash(50.0) == float("inf")
    assert FillModel(strict_cash=True).payer_cash(50.0) == 50.0
    with pytest.raises(ValueError):
        FillModel("mid")
    with pytest.raises(ValueError):
        FillModel(slippage_bps=float("nan"))


@pytest.mark.parametrize("fill,bps", [("open", 5.0), ("close", 100.0)])
def test_all_in_buys_fill_like_live_in_replay_and_exact(ref_bars, fill, bps):
    """At the last close only the slippage can make the fill dearer than the sizing price:
    100 bps on ~10,000 exceeds the cash an all-in buy leaves over (less than one share)."""
    info = resolve_plugin("all_in", (PLUGINS,))
    bars = ref_bars.slice(0, 700)
    kw = {"slippage_bps": bps, "fill": fill}
    event = run_event(info, {}, bars, 40, CAPITAL, **kw)
    exact = run_exact(info, {}, bars, 40, CAPITAL, plugin_dirs=(PLUGINS,), **kw)
    buys = [f for f in event.fills if f["type"] == "buy"]
    assert len(buys) >= 4
    assert event.refused == 0 and exact.refused == 0
    assert event.max_overdraft > 0  # slippage (and the open) made some buys dearer than cash
    assert any(f["cash"] < 0 for f in buys)
    assert _rows(event) == _rows(exact)
    assert exact.max_overdraft == pytest.approx(event.max_overdraft, abs=1e-6)
    assert event.metrics.final_equity == pytest.approx(exact.metrics.final_equity, abs=1e-6)


def test_demo_broker_fills_the_same_as_the_backtest(ref_bars):
    """The demo: the simulated broker's default price rule (last close) and an account of
    100,000 of which the algorithm holds 10,000. Same fills as the backtest's --fill close."""
    info = resolve_plugin("all_in", (PLUGINS,))
    bars = ref_bars.slice(0, 700)
    event = run_event(info, {}, bars, 40, CAPITAL, slippage_bps=100.0, fill="close")
    demo = run_exact(info, {}, bars, 40, CAPITAL, slippage_bps=100.0, fill="close",
                     plugin_dirs=(PLUGINS,), account_cash=100_000.0)
    assert event.max_overdraft > 0 and len(event.fills) >= 8
    assert _rows(event) == _rows(demo)


def test_strict_cash_refuses_the_overdrawing_buys_everywhere(ref_bars):
    info = resolve_plugin("all_in", (PLUGINS,))
    bars = ref_bars.slice(0, 700)
    kw = {"slippage_bps": 5.0, "fill": "open", "strict_cash": True}
    event = run_event(info, {}, bars, 40, CAPITAL, **kw)
    exact = run_exact(info, {}, bars, 40, CAPITAL, plugin_dirs=(PLUGINS,), **kw)
    assert event.refused > 0 and event.max_overdraft == 0
    assert any("insufficient buying power" in p["reason"] for p in event.problems)
    assert _rows(event) == _rows(exact)
    assert event.refused == exact.refused
    assert event.problems == exact.problems


def test_simulated_broker_uses_the_model(system_store, market_store, calendar, ref_bars):
    """The broker's price and refusals are the model's: a buy the account can pay fills at
    last close + slippage; one beyond the account's cash is rejected with the model's words."""
    rows = [("REF", int(t), float(o), float(h), float(lo), float(c), int(v))
            for t, o, h, lo, c, v in zip(ref_bars.ts[:5], ref_bars.o[:5], ref_bars.h[:5],
                                         ref_bars.l[:5], ref_bars.c[:5], ref_bars.v[:5],
                                         strict=True)]
    market_store.insert_rows(rows)
    clock = ManualClock(from_epoch(int(ref_bars.ts[5])) + timedelta(seconds=2))
    broker = SimulatedBroker(system_store, market_store, clock, starting_cash=1_000.0,
                             slippage_bps=5.0, price_rule=last_close(market_store),
                             symbols={"REF"}, calendar=calendar)
    last = float(ref_bars.c[4])
    u = broker.submit_order(OrderRequest(client_order_id="a1", ticker="REF", side="buy",
                                         qty=2))
    assert u.status == "filled" and u.filled_avg_price == fill_price("buy", last, 5.0)
    u = broker.submit_order(OrderRequest(client_order_id="a2", ticker="REF", side="buy",
                                         qty=1000))
    cost = 1000 * fill_price("buy", last, 5.0)
    assert u.status == "rejected"
    assert u.reason == refusal("buy", 1000, fill_price("buy", last, 5.0), 0.0,
                               broker.get_account().cash, 0)
    assert u.reason.startswith(f"insufficient buying power ({cost:,.2f}")
