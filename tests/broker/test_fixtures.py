"""Documented Alpaca examples (tests/fakes/fixtures/, each citing its page) against our
parsers and against the emulator, so neither can drift from what Alpaca documents."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from app.broker.alpaca import AlpacaBroker, update_from_order
from app.broker.alpaca_clients import INVALID_REQUEST_CODE, api_error_code, refusal_text
from app.broker.base import OrderRequest
from tests.fakes.emulator_fixtures import SESSION_NOW, make_settings
from tests.marketdata.test_stream import make_stream, started
from tests.waiting import wait_until

FIX = Path(__file__).resolve().parents[1] / "fakes" / "fixtures"


def load(name: str) -> dict:
    data = json.loads((FIX / name).read_text())
    assert data["source"].startswith("https://")
    return data


def test_every_fixture_cites_its_source() -> None:
    files = sorted(FIX.glob("*.json"))
    assert len(files) >= 6
    for f in files:
        assert json.loads(f.read_text())["source"].startswith("https://"), f


def test_our_stream_parser_reads_the_documented_bars(settings, market_store, calendar,
                                                     clock) -> None:
    s = make_stream(settings, market_store, calendar, clock)
    for msg in (load("stock_stream.json")["bar"],
                load("stream_messages.json")["test_stream_bar"][0]):
        (row,) = s._handle([msg])
        assert row[0] == msg["S"] and row[2:] == (msg["o"], msg["h"], msg["l"], msg["c"],
                                                   msg["v"])
        (urow,) = s._handle([dict(msg, T="u")])  # an updated bar has the same schema
        assert urow == row


def test_our_stream_parser_reads_the_documented_halt(settings, market_store, calendar,
                                                     clock) -> None:
    s = make_stream(settings, market_store, calendar, clock)
    s._subs.acquire("AAPL")
    halt = load("stock_stream.json")["status_halt"]
    assert s._handle([halt]) == [] and s.is_halted("AAPL")
    assert "Trading Halt" in s.ticker_status("AAPL").halt_reason
    s._handle([dict(halt, sc="T", sm="Trading Resumption", rc="", rm="")])
    assert not s.is_halted("AAPL")
    s._handle([dict(halt, sc="2", z="A")])  # CTA tapes: 2 is a halt
    assert s.is_halted("AAPL")


@pytest.mark.parametrize("code", [400, 405, 410])
def test_documented_subscription_errors_refuse_the_symbol(settings, market_store, calendar,
                                                          clock, code) -> None:
    s = make_stream(settings, market_store, calendar, clock)
    s._subs.acquire("AAPL")
    s._statuses_ok = False
    s._acks.append(("subscribe", ("AAPL",), False))
    msg = load("stream_messages.json")["errors"][str(code)]
    s._handle([{"T": "error", "code": code, "msg": msg}])
    st = s.ticker_status("AAPL")
    assert st.state == "refused" and str(code) in st.detail and msg in st.detail


def test_the_emulator_speaks_the_documented_stream_messages(emulator, settings, market_store,
                                                            calendar, clock) -> None:
    import websocket

    docs = load("stream_messages.json")
    ws = websocket.create_connection(emulator.stream_url, timeout=5)
    try:
        assert json.loads(ws.recv()) == docs["connected"]
        ws.send(json.dumps({"action": "subscribe", "bars": ["AAPL"]}))
        assert json.loads(ws.recv()) == [{"T": "error", "code": 401,
                                          "msg": docs["errors"]["401"]}]
        ws.send(json.dumps({"action": "auth", "key": emulator.key_id,
                            "secret": emulator.secret_key}))
        assert json.loads(ws.recv()) == docs["authenticated"]
        ws.send(json.dumps({"action": "subscribe", "bars": ["AAPL"]}))
        (sub,) = json.loads(ws.recv())
        assert set(sub) == set(docs["subscription"][0]) and sub["bars"] == ["AAPL"]
        emulator.faults.symbol_limit = 1
        ws.send(json.dumps({"action": "subscribe", "bars": ["MSFT"]}))
        assert json.loads(ws.recv()) == [{"T": "error", "code": 405,
                                          "msg": docs["errors"]["405"]}]
        emulator.faults.invalid_channels = {"dailyBars"}
        ws.send(json.dumps({"action": "subscribe", "dailyBars": ["AAPL"]}))
        assert json.loads(ws.recv()) == [{"T": "error", "code": 410,
                                          "msg": docs["errors"]["410"]}]
        emulator.emit_minute(int(SESSION_NOW.timestamp()) - 60)
        (bar,) = json.loads(ws.recv())
        assert set(bar) == set(load("stock_stream.json")["bar_keys"]) and bar["T"] == "b"
        ws.send(json.dumps({"action": "auth", "key": "k", "secret": "s"}))
        assert json.loads(ws.recv()) == [{"T": "error", "code": 403,
                                          "msg": docs["errors"]["403"]}]
    finally:
        ws.close()
    other = make_stream(settings, market_store, calendar, clock)
    try:  # a second connection on the same keys gets the documented 406
        started(other)
        second = websocket.create_connection(emulator.stream_url, timeout=5)
        second.recv()
        second.send(json.dumps({"action": "auth", "key": emulator.key_id,
                                "secret": emulator.secret_key}))
        assert json.loads(second.recv()) == docs["connection_limit"]
        second.close()
    finally:
        other.stop()


def test_our_order_parser_and_alpaca_py_read_the_documented_trade_update() -> None:
    from alpaca.trading.models import TradeUpdate

    data = load("trade_updates.json")["fill"]["data"]
    tu = TradeUpdate(**data)  # alpaca-py's own model accepts the documented example
    assert tu.event == "fill" and float(tu.qty) == 1790.86
    u = update_from_order(data["order"])
    assert u.status == "filled" and u.client_order_id == data["order"]["client_order_id"]
    assert u.filled_avg_price == pytest.approx(105.8988475) and u.ticker == "SOLUSD"


def test_the_emulators_trade_updates_carry_the_documented_fields(emulator) -> None:
    from alpaca.trading.client import TradingClient
    from alpaca.trading.enums import OrderSide, TimeInForce
    from alpaca.trading.requests import MarketOrderRequest
    from alpaca.trading.stream import TradingStream

    doc = load("trade_updates.json")
    got = []

    async def on_update(u) -> None:
        got.append(u)

    ts = TradingStream(emulator.key_id, emulator.secret_key, url_override=emulator.trade_stream_url)
    ts.subscribe_trade_updates(on_update)
    threading.Thread(target=ts.run, daemon=True).start()
    try:
        assert wait_until(lambda: emulator.trade_conns)
        tc = TradingClient(emulator.key_id, emulator.secret_key, url_override=emulator.url)
        tc.submit_order(MarketOrderRequest(symbol="GE", qty=1, side=OrderSide.BUY,
                                           time_in_force=TimeInForce.DAY, client_order_id="f-1"))
        assert wait_until(lambda: any(u.event == "fill" for u in got))
        assert {u.event for u in got} <= set(doc["events"])
    finally:
        ts.stop()
    o = emulator.find_order_by_cid("f-1")
    documented = set(doc["fill"]["data"]["order"]) - {"cancel_requested_at"}
    assert documented <= set(o), documented - set(o)


def test_documented_error_bodies_are_read_by_code() -> None:
    dup = load("duplicate_client_order_id.json")
    assert api_error_code(Exception(json.dumps(dup["body"]))) == INVALID_REQUEST_CODE
    assert api_error_code(Exception(json.dumps(load("order_lifecycle.json")["error_example"]))
                          ) == 42210000
    data = load("data_api_errors.json")
    assert api_error_code(Exception(json.dumps(data["bad_keys"]["body"]))) is None
    assert "keys are wrong" in refusal_text("x", 403, None, "forbidden", data_api=True)
    assert "data plan" in refusal_text("x", 403, None, data["recent_sip"]["body"]["message"],
                                       data_api=True)


def test_orders_go_accepted_or_pending_new_as_documented(clock, calendar, tmp_path) -> None:
    """Realism: in the session an order is pending_new, then new, then filled; after the close
    it is accepted and waits for the open; a day order still open at the close is canceled."""
    from tests.fakes.alpaca_emulator import AlpacaEmulator

    lifecycle = load("order_lifecycle.json")
    documented = set(lifecycle["common"]) | set(lifecycle["less_common"])
    with AlpacaEmulator(now=clock.now, calendar=calendar, realism=True) as emu:
        b = AlpacaBroker.from_settings(make_settings(emu, tmp_path), poll_interval=0.1,
                                       stale_after=0.2, stream_backoff=0.05)
        try:
            seen = []
            b.add_order_listener(seen.append)
            u = b.submit_order(OrderRequest("r-1", "AAPL", "buy", 2))
            assert u.status == "pending_new"
            assert wait_until(lambda: any(x.status == "filled" for x in seen if
                                        x.client_order_id == "r-1"))
            emu.faults.fill_mode = "hold"
            b.submit_order(OrderRequest("r-2", "AAPL", "buy", 2))
            clock.set(calendar.next_close(clock.now()))  # the close: the day order is canceled
            assert wait_until(lambda: emu.find_order_by_cid("r-2")["status"] == "canceled")
            emu.faults.fill_mode = "fill"
            late = b.submit_order(OrderRequest("r-3", "MSFT", "buy", 1))  # after hours
            assert late.status == "accepted"
            assert emu.find_order_by_cid("r-3")["status"] == "accepted"
            clock.set(calendar.next_open(clock.now()))  # released at the next open
            assert wait_until(lambda: emu.find_order_by_cid("r-3")["status"] == "filled")
            assert {x.status for x in seen} <= documented
        finally:
            b.close()
