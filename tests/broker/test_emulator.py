"""The emulator itself, through alpaca-py's own models (so our fake cannot drift from what
alpaca-py validates: protocol doc section 5)."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from app.broker.alpaca import AlpacaBroker
from app.broker.base import BrokerError
from tests.fakes.alpaca_emulator import AlpacaEmulator
from tests.fakes.emulator_fixtures import make_settings
from tests.waiting import wait_until


def test_calendar_parses_in_alpaca_py(emulator: AlpacaEmulator) -> None:
    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import GetCalendarRequest

    tc = TradingClient(emulator.key_id, emulator.secret_key, url_override=emulator.url)
    days = tc.get_calendar(GetCalendarRequest(start=date(2024, 11, 27), end=date(2024, 12, 2)))
    assert [d.date for d in days] == [date(2024, 11, 27), date(2024, 11, 29), date(2024, 12, 2)]
    early = days[1]  # the day after Thanksgiving closes at 13:00
    assert (early.open.hour, early.open.minute, early.close.hour) == (9, 30, 13)


def test_alpaca_py_trading_stream_gets_trade_updates(emulator: AlpacaEmulator) -> None:
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest
    from alpaca.trading.stream import TradingStream

    got = []

    async def on_update(u) -> None:
        got.append(u)

    ts = TradingStream(emulator.key_id, emulator.secret_key, url_override=emulator.trade_stream_url)
    ts.subscribe_trade_updates(on_update)
    threading.Thread(target=ts.run, daemon=True).start()
    try:
        assert wait_until(lambda: emulator.trade_conns)
        tc = TradingClient(emulator.key_id, emulator.secret_key, url_override=emulator.url)
        tc.submit_order(MarketOrderRequest(symbol="MSFT", qty=2, side=OrderSide.BUY,
                                           time_in_force=TimeInForce.DAY, client_order_id="x-1"))
        assert wait_until(lambda: any(u.event == "fill" for u in got))
        fill = next(u for u in got if u.event == "fill")
        assert fill.order.client_order_id == "x-1" and fill.qty == 2 and fill.position_qty == 2
    finally:
        ts.stop()


def test_wrong_keys_are_a_clear_non_retryable_error(emulator, tmp_path) -> None:
    s = make_settings(emulator, tmp_path, **{"alpaca.key_id": "someone-else"})
    b = AlpacaBroker.from_settings(s, stream=False)
    try:
        with pytest.raises(BrokerError, match="keys were not accepted") as ei:
            b.get_account()
        assert not ei.value.retryable and ei.value.status == 401
    finally:
        b.close()
