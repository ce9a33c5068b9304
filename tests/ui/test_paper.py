"""The window on a PAPER engine: the real AlpacaBroker and AlpacaStream (alpaca-py and
websocket-client) talking to the loopback Alpaca emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.broker.alpaca import AlpacaBroker
from app.config import load_settings
from app.engine.facade import Engine
from app.engine.scheduler import Scheduler
from app.marketdata.backfill import Backfiller
from app.marketdata.stream import AlpacaStream
from tests.broker.test_broker import FAST as BROKER_FAST
from tests.fakes.alpaca_emulator import AlpacaEmulator
from tests.marketdata.test_stream import FAST as STREAM_FAST
from tests.ui.conftest import SESSION_TIME, SteppedClock, set_up_pin


@pytest.fixture
def paper(tmp_path: Path, calendar, qtbot) -> Iterator[tuple]:
    from app.ui.window import MainWindow
    from db.market import MarketStore
    from db.system import SystemStore

    clock = SteppedClock(SESSION_TIME)
    emu = AlpacaEmulator(now=clock.now, calendar=calendar).start()
    settings = load_settings(path=tmp_path / "absent.toml", env={}, overrides={
        **emu.setting_values(), "mode": "paper", "data_dir": str(tmp_path / "data")})
    system = SystemStore(settings.system_db_path)
    market = MarketStore(settings.market_db_path, calendar)
    broker = AlpacaBroker.from_settings(settings, **BROKER_FAST)
    bf = Backfiller(settings, market, calendar, clock=clock, rate_limit_wait=0.01)
    feed = AlpacaStream(settings, market, calendar, clock=clock, backfiller=bf, **STREAM_FAST)
    engine = Engine(mode="paper", system=system, market=market, broker=broker, feed=feed,
                    clock=clock, calendar=calendar)
    w = MainWindow(settings, system, run_scheduler=False)
    qtbot.addWidget(w)
    w.resize(800, 480)
    w.show()
    w.attach_engine(engine, Scheduler(engine, clock, calendar))
    yield w, engine, emu, clock
    w.shutdown()
    emu.stop()
    system.close()
    market.close()


def test_paper_header_stream_and_ticker_checks(qtbot, paper) -> None:
    w, engine, emu, clock = paper
    set_up_pin(w)
    assert w.header_vm.modeText == "PAPER"
    qtbot.waitUntil(lambda: w.header_vm.streamState == "connected", timeout=10_000)
    qtbot.waitUntil(lambda: w.header_vm.free() is not None, timeout=10_000)
    acct = engine.broker.get_account()
    assert w.header_vm.valueText == f"${acct.equity:,.2f}"
    assert w.header_vm.marketOpen and w.header_vm.marketText.startswith("OPEN")

    # Alpaca says the ticker cannot be traded: the flow says so and keeps the input.
    w.dash_vm.newAlgorithm()
    qtbot.waitUntil(lambda: bool(w.new_vm.plugins), timeout=10_000)
    w.new_vm.choosePlugin("sma_crossover")
    for ch in "NOTRD":
        w.new_vm.key(ch)
    w.new_vm.next()  # checked with the broker at the ticker step, before Next
    qtbot.waitUntil(lambda: not w.new_vm.checking, timeout=10_000)
    assert w.new_vm.step == "ticker"
    assert "not tradable" in w.new_vm.message

    # A real one: backfilled over REST, subscribed on the websocket, its card appears.
    for _ in range(5):
        w.new_vm.backspace()
    for ch in "AAPL":
        w.new_vm.key(ch)
    w.new_vm.next()
    qtbot.waitUntil(lambda: w.new_vm.step == "capital", timeout=15_000)
    for ch in "1000":
        w.new_vm.key(ch)
    w.new_vm.next()
    w.new_vm.confirm()
    qtbot.waitUntil(lambda: w.cards.count() == 1, timeout=15_000)
    qtbot.waitUntil(lambda: "AAPL" in emu.subscribed(), timeout=10_000)

    # A bar on the stream reaches the card.
    algo = w.cards.ids()[0]
    ts = int(SESSION_TIME.timestamp())
    clock.advance(minutes=1)
    emu.emit_minute(ts, ["AAPL"])
    bar = emu.bar("AAPL", ts)
    qtbot.waitUntil(lambda: w.cards.card(algo)["lastPriceText"] == f"${bar['c']:,.2f}",
                    timeout=10_000)

    # The connection drops: the header says so, then it is back.
    states: list[str] = []
    w.bridge.feedStatus.connect(lambda s, d: states.append(s))
    emu.drop_market_connections()
    qtbot.waitUntil(lambda: "reconnecting" in states and
                    w.header_vm.streamState == "connected", timeout=10_000)
