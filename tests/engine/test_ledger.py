"""The ledger's arithmetic over a sequence of trades."""

from __future__ import annotations

import pytest

from app.engine.ledger import Ledger


def tx(type_, shares, price, commission=0.0):
    return {"type": type_, "shares": shares, "price": price, "commission": commission}


def test_sequence_of_trades():
    led = Ledger.from_transactions(10_000, [
        tx("buy", 10, 100.0),   # cost 1000, avg 100
        tx("buy", 10, 110.0),   # cost 1100, avg 105
        tx("sell", 5, 120.0),   # realised 5 * 15 = 75
    ])
    assert led.cash == pytest.approx(10_000 - 1000 - 1100 + 600)
    assert led.position == 15
    assert led.avg_cost == pytest.approx(105.0)
    assert led.realised == pytest.approx(75.0)
    assert led.unrealised(100.0) == pytest.approx(15 * -5.0)
    assert led.value(100.0) == pytest.approx(led.cash + 1500)
    assert led.pnl(100.0) == pytest.approx(led.realised + led.unrealised(100.0))
    assert led.pnl_pct(100.0) == pytest.approx(100 * led.pnl(100.0) / 10_000)


def test_closing_the_position_resets_the_average_and_books_everything():
    led = Ledger(5_000)
    for t in (tx("buy", 10, 50.0, 1.0), tx("sell", 10, 55.0, 1.0), tx("buy", 4, 60.0)):
        led.apply(t)
    assert led.position == 4 and led.avg_cost == pytest.approx(60.0)
    assert led.realised == pytest.approx(50.0 - 2.0)
    assert led.cash == pytest.approx(5_000 - 500 - 1 + 550 - 1 - 240)
    assert led.pnl(60.0) == pytest.approx(48.0)
    led.apply(tx("sell", 4, 58.0))
    assert led.position == 0 and led.avg_cost is None
    assert led.unrealised(70.0) == 0.0
    assert led.pnl(None) == pytest.approx(led.realised)


def test_value_without_a_price_uses_cost():
    led = Ledger.from_transactions(1_000, [tx("buy", 2, 100.0)])
    assert led.value(None) == pytest.approx(1_000)
