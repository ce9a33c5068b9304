"""The template plugins (RSI(2), Bollinger, opening-range breakout, daily momentum): each
plugin, run by the event path, and its vectorised twin agree trade for trade on the same
data, with costs and both fill rules; each declares its parameters and chart indicators."""

from __future__ import annotations

from datetime import date

import pytest

from app.backtest.replay import run_event
from app.backtest.run import resolve_plugin
from app.backtest.synthetic import random_walk
from app.backtest.vectorized import VECTORISED, run_vector

CAPITAL = 10_000.0
TEMPLATES = {
    "rsi2": {"trend_sma": 100},
    "bollinger": {},
    "opening_range": {},
    "momentum": {"lookback_days": 1},
}


@pytest.fixture(scope="module")
def walk():
    from db.calendar import nyse

    # Six weeks with a half day (2024-07-03) and a holiday (07-04); a gap in the minutes.
    bars = random_walk("TPL", nyse(), date(2024, 6, 3), date(2024, 7, 12), seed=5,
                       vol=0.0012)
    keep = [i for i in range(len(bars)) if i % 97 not in (3, 4)]
    from app.backtest.bars import Bars

    return Bars.from_arrays("TPL", bars.ts[keep], bars.o[keep], bars.h[keep], bars.l[keep],
                            bars.c[keep], bars.v[keep])


@pytest.mark.parametrize("costs", [
    {"slippage_bps": 0.0, "commission_per_share": 0.0, "fill": "open"},
    {"slippage_bps": 3.0, "commission_per_share": 0.01, "fill": "open"},
    {"slippage_bps": 2.0, "commission_per_share": 0.0, "fill": "close"},
])
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_plugin_equals_its_vectorised_twin(walk, name, costs):
    info = resolve_plugin(name)
    assert info.ok, info.error
    params = TEMPLATES[name]
    event = run_event(info, params, walk, 400, CAPITAL, **costs)
    vector = run_vector(name, params, walk, 400, CAPITAL, **costs)
    assert event.errors == 0 and event.refused == 0, event.problems[:3]
    assert len(event.fills) >= 6, f"{name} hardly trades on the fixture"
    keys = ("i", "type", "shares", "price", "commission")
    assert [tuple(f[k] for k in keys) for f in event.fills] == \
           [tuple(f[k] for k in keys) for f in vector.fills]
    assert vector.equity == pytest.approx(event.equity, abs=1e-6)


def test_templates_declare_parameters_descriptions_and_indicators():
    for name in TEMPLATES:
        info = resolve_plugin(name)
        assert info.description and info.params and name in VECTORISED
        declared = info.cls.indicators
        assert isinstance(declared, tuple)
        for kind, length in declared:
            assert kind == "sma" and (length in info.params or isinstance(length, int))
    assert resolve_plugin("rsi2").cls.indicators == (("sma", "trend_sma"), ("sma", "exit_sma"))
    assert resolve_plugin("bollinger").cls.indicators == (("sma", "window"),)


def test_opening_range_is_flat_overnight(walk):
    """Every position is closed the same day (by exit_minute, or 13:00 on the half day the
    next morning before the range forms)."""
    from db.timeutil import from_epoch

    r = run_event(resolve_plugin("opening_range"), {}, walk, 400, CAPITAL)
    days = [(from_epoch(f["ts"]).date(), f["type"]) for f in r.fills]
    buys = [d for d, t in days if t == "buy"]
    assert len(buys) >= 3
    for k in range(0, len(days) - 1, 2):
        (d0, t0), (d1, t1) = days[k], days[k + 1]
        assert (t0, t1) == ("buy", "sell")
        assert d1 == d0 or d0 == date(2024, 7, 3)
