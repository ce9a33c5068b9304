"""The scheduler runs on its QThread and stops cleanly; LIVE trading waits for the PIN."""

from __future__ import annotations

import dataclasses

from app.clock import SimulatedClock
from tests.ui.conftest import PIN, SESSION_TIME, enter, make_rig, set_up_pin


def open_window(qtbot, rig, **kw):
    from app.ui.window import MainWindow

    w = MainWindow(rig.settings, rig.engine.system, **kw)
    qtbot.addWidget(w)
    w.attach_engine(rig.engine, rig.scheduler)
    return w


def test_scheduler_thread_ticks_and_stops(qtbot, data_dir, plugin_dir) -> None:
    # 600x: a simulated minute lasts 0.1 s, so ticks come quickly on the real scheduler.
    rig = make_rig(data_dir, clock=SimulatedClock(SESSION_TIME, speed=600.0),
                   plugin_dir=plugin_dir)
    rig.engine.create_algorithm("buy_once", "AAPL", 5000.0)
    w = open_window(qtbot, rig)
    ticks = []
    w.bridge.tick.connect(ticks.append)
    qtbot.waitUntil(lambda: len(ticks) >= 3, timeout=15_000)
    assert w.scheduler_thread.isRunning()
    assert any(t.fills for t in ticks)  # the plugin's buy was filled on the first tick
    qtbot.waitUntil(lambda: w.cards.count() == 1
                    and w.cards.card(w.cards.ids()[0])["positionText"].startswith("10 sh"),
                    timeout=15000)
    w.shutdown()
    assert not w.scheduler_thread.isRunning() and not w.worker_thread.isRunning()
    rig.engine.system.close()
    rig.engine.market.close()


def test_live_mode_trades_only_after_pin(qtbot, data_dir, plugin_dir) -> None:
    # The window's live gate looks only at the engine's mode; the parts below are the
    # simulated ones (a test never reaches a real live account).
    rig = make_rig(data_dir, clock=SimulatedClock(SESSION_TIME, speed=600.0),
                   plugin_dir=plugin_dir)
    rig.engine.mode = "live"
    rig.settings = dataclasses.replace(rig.settings, mode="demo")
    w = open_window(qtbot, rig)
    set_up_pin(w)  # the PIN exists; now lock and restart the gate as on a fresh start
    w.shutdown()
    rig2 = make_rig(data_dir, clock=SimulatedClock(SESSION_TIME, speed=600.0),
                    plugin_dir=plugin_dir)
    rig2.engine.mode = "live"
    w2 = open_window(qtbot, rig2)
    starts: list[int] = []  # a start that ended again is seen too (queued to this thread)
    w2.scheduler_thread.started.connect(lambda: starts.append(1))
    # The marker: the engine's start reached the window, whose handler starts the scheduler
    # at once unless the live gate holds it (nothing else starts it before the PIN).
    qtbot.waitUntil(lambda: w2._engine_started, timeout=15000)
    assert w2.header_vm.modeText == "LIVE \u00b7 PAUSED"
    assert "real money" in w2.lock_vm.subtitle
    assert not starts and not w2.scheduler_thread.isRunning()
    enter(w2.lock_vm, PIN)
    qtbot.waitUntil(lambda: w2.scheduler_thread.isRunning(), timeout=15000)
    assert w2.header_vm.modeText == "LIVE"
    w2.shutdown()
    for r in (rig, rig2):
        r.engine.system.close()
        r.engine.market.close()


def test_worker_thread_keeps_one_connection_per_store(qtbot, data_dir, plugin_dir) -> None:
    """The engine worker is a QThread running Qt's own event loop: each slot enters Python
    with a fresh thread state. Its DB reads must reuse one connection, not open one per call
    (the window leaked 0.25 MB/s that way)."""
    rig = make_rig(data_dir, clock=SimulatedClock(SESSION_TIME), plugin_dir=plugin_dir)
    rig.engine.create_algorithm("buy_once", "AAPL", 5000.0)
    w = open_window(qtbot, rig, run_scheduler=False)
    qtbot.waitUntil(lambda: w._engine_started, timeout=15000)
    views = []
    w.worker.views.connect(lambda v, s: views.append(v))
    for _ in range(40):
        w.requestRefresh.emit()
    qtbot.waitUntil(lambda: len(views) >= 40, timeout=15000)
    # GUI thread, worker thread, the engine's own threads: a handful, not one per refresh.
    assert rig.engine.system.open_connections() <= 6
    assert rig.engine.market.open_connections() <= 6
    w.shutdown()
    rig.engine.system.close()
    rig.engine.market.close()


def test_bars_from_plain_threads_while_chart_and_cards_redraw(qtbot, data_dir,
                                                               plugin_dir) -> None:
    """The path that segfaulted on PySide6 6.8: bars handed over by plain Python threads (the
    synthetic feed's, websocket-client's) while the detail chart and the cards redraw. Three
    threads post 1,500 bars each; every one reaches the chart and the card, in order, on the
    GUI thread."""
    import threading
    from types import SimpleNamespace

    rig = make_rig(data_dir, clock=SimulatedClock(SESSION_TIME), plugin_dir=plugin_dir)
    algo = rig.engine.create_algorithm("sma_crossover", "AAPL", 5000.0)
    w = open_window(qtbot, rig, run_scheduler=False)
    set_up_pin(w)
    w.schedule_refresh()
    qtbot.waitUntil(lambda: w.cards.count() == 1, timeout=15000)
    w.dash_vm.open(algo)
    qtbot.waitUntil(lambda: w.chart.count > 0 and not w._detail_loading, timeout=15000)
    n0, t0 = w.chart.count, int(w.chart.timestamps()[-1])
    gui = threading.get_ident()
    receivers: set[int] = set()
    w.bridge.bar.connect(lambda *a: receivers.add(threading.get_ident()))
    per_thread, nthreads = 1500, 3

    def feed(k: int) -> None:  # thread k sends minutes k, k+3, k+6, ... of AAPL
        for i in range(per_thread):
            m = 1 + k + nthreads * i
            w.bridge.on_bar(SimpleNamespace(ticker="AAPL", ts=t0 + 60 * m, c=100.0 + m / 100))
            if i % 100 == 0:
                w.bridge.on_bar(SimpleNamespace(ticker="MSFT", ts=t0 + 60 * m, c=1.0))

    threads = [threading.Thread(target=feed, args=(k,)) for k in range(nthreads)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        w.chart.repaint()  # redraw while bars are arriving, as a screen would
        qtbot.wait(5)
    qtbot.waitUntil(lambda: w.bridge.inbox.pending() == 0, timeout=15000)
    w.chart.repaint()
    assert receivers == {gui}
    # Bars from three threads interleave: the chart keeps the newest minute and never goes
    # back, so it holds at least one bar per thread's last minute and ends on the newest.
    last = nthreads * per_thread
    assert int(w.chart.timestamps()[-1]) == t0 + 60 * last
    assert w.chart.count > n0 and w.chart.closes()[-1] == 100.0 + last / 100
    w.shutdown()
    rig.engine.system.close()
    rig.engine.market.close()
