"""The four templates against backtrader, trade for trade, on a fixed CSV.

``tests/backtest/data/ref_templates.csv``: 18 NYSE sessions (2024-06-17..07-12, with the
Juneteenth and Independence Day holidays and the 07-03 half day), every minute, a seeded
random walk with 4-decimal prices. The plugin runs on the backtest's event path; backtrader
(``reference_bt.py``) runs the same rule with its own bar loop, broker and, for RSI(2) and
Bollinger, its own indicators. Same bars, same convention (a decision at minute t sees the
bars before t and fills at bar t's open), no costs: every fill's minute, side, share count and
price and the final value must be equal.
"""

from __future__ import annotations

import pytest

from app.backtest.bars import load_csv
from app.backtest.replay import run_event
from app.backtest.run import resolve_plugin
from db.timeutil import from_epoch
from tests.backtest.conftest import DATA
from tests.backtest.reference_bt import run_template

CAPITAL = 10_000.0
CASES = [
    ("rsi2", {}),                                   # trend SMA 200, exit SMA 5, RSI(2) < 10
    ("rsi2", {"trend_sma": 100, "oversold": 20.0}),
    ("bollinger", {}),                              # SMA 20 +/- 2 sd
    ("bollinger", {"window": 50, "width": 1.5}),
    ("opening_range", {}),                          # 30-minute range, out by 15:45
    ("opening_range", {"range_minutes": 15, "exit_minute": 200}),
    ("momentum", {"lookback_days": 1}),
    ("momentum", {"lookback_days": 2, "threshold": -0.002}),
]


@pytest.fixture(scope="module")
def bars():
    from db.calendar import nyse

    return load_csv(DATA / "ref_templates.csv", "TPL", nyse())


@pytest.mark.parametrize("name,params", CASES, ids=lambda x: str(x))
def test_template_matches_backtrader_trade_for_trade(bars, name, params):
    ours = run_event(resolve_plugin(name), params, bars, 0, CAPITAL, slippage_bps=0.0,
                     commission_per_share=0.0, fill="open")
    assert ours.refused == 0 and ours.errors == 0, ours.problems[:3]
    ref_fills, ref_value = run_template(name, bars, CAPITAL, **params)
    theirs = [(f["time"], f["type"], f["shares"], round(f["price"], 4)) for f in ref_fills]
    mine = [(from_epoch(f["ts"]).replace(tzinfo=None), f["type"], f["shares"],
             round(f["price"], 4)) for f in ours.fills]
    assert len(theirs) >= 6, f"{name} hardly trades on the fixture"
    assert mine == theirs
    assert ours.metrics.final_equity == pytest.approx(ref_value, abs=1e-6)
