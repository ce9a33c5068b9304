"""The report's figures on small hand-checked cases."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from app.backtest.metrics import compute, round_trips

DAY = 86400
T0 = 1709562600  # 2024-03-04 14:30 UTC


def _fill(ts, side, shares, price, commission=0.0):
    return {"ts": ts, "type": side, "shares": shares, "price": price, "commission": commission}


def test_round_trips_group_scaling_in_and_out():
    fills = [_fill(1, "buy", 10, 10.0), _fill(2, "buy", 10, 12.0), _fill(3, "sell", 5, 13.0),
             _fill(4, "sell", 15, 9.0, commission=1.0), _fill(5, "buy", 4, 20.0)]
    trips = round_trips(fills, last_close=25.0)
    assert len(trips) == 2
    closed, open_ = trips
    assert closed.closed and (closed.entry_ts, closed.exit_ts, closed.shares) == (1, 4, 20)
    assert closed.entry_price == pytest.approx(11.0)
    assert closed.exit_price == pytest.approx((5 * 13 + 15 * 9) / 20)
    assert closed.pnl == pytest.approx(5 * 13 + 15 * 9 - 220 - 1.0)
    assert not open_.closed and open_.pnl == pytest.approx(4 * 5.0)


def test_figures_of_a_three_day_run():
    # Two bars a day; equity 100 -> 110 -> 99 -> 108.9 at the day closes.
    ts = np.array([T0, T0 + 60, T0 + DAY, T0 + DAY + 60, T0 + 2 * DAY, T0 + 2 * DAY + 60])
    equity = np.array([105.0, 110.0, 120.0, 99.0, 100.0, 108.9])
    close = np.array([10.0, 11.0, 12.0, 9.9, 10.0, 10.89])
    position = np.array([0, 10, 10, 10, 0, 0])
    fills = [_fill(T0 + 60, "buy", 10, 10.0), _fill(T0 + 2 * DAY, "sell", 10, 9.5)]
    m, trips = compute(ts=ts, close=close, equity=equity, position=position,
                       day_ids=ts // DAY, fills=fills, initial_capital=100.0)
    assert m.total_return == pytest.approx(0.089)
    assert m.sessions == 3 and m.bars == 6
    assert m.cagr == pytest.approx(1.089 ** (252 / 3) - 1)
    daily = [0.10, 99 / 110 - 1, 108.9 / 99 - 1]
    assert m.sharpe == pytest.approx(statistics.mean(daily) / statistics.stdev(daily)
                                     * math.sqrt(252))
    downside = math.sqrt(sum(min(r, 0) ** 2 for r in daily) / 3)
    assert m.sortino == pytest.approx(statistics.mean(daily) / downside * math.sqrt(252))
    assert m.max_drawdown == pytest.approx(99 / 120 - 1)
    assert (m.max_drawdown_peak_ts, m.max_drawdown_trough_ts) == (T0 + DAY, T0 + DAY + 60)
    assert m.exposure == pytest.approx(0.5)
    assert (m.trades, m.open_trades, m.fills, m.win_rate) == (1, 0, 2, 0.0)
    assert m.buy_and_hold_return == pytest.approx(0.089)
    assert trips[0].pnl == pytest.approx(-5.0)


def test_a_flat_run_has_no_ratios():
    ts = np.array([T0, T0 + 60])
    m, _ = compute(ts=ts, close=np.array([1.0, 1.0]), equity=np.array([50.0, 50.0]),
                   position=np.zeros(2), day_ids=ts // DAY, fills=[], initial_capital=50.0)
    assert (m.total_return, m.max_drawdown, m.trades, m.exposure) == (0.0, 0.0, 0, 0.0)
    assert m.sharpe is None and m.sortino is None and m.win_rate is None
    assert m.as_dict()["max_drawdown_peak_ts"] is None
