"""The one top-level window: header + stacked pages, navigation, PIN prompts, engine wiring.

Pages are QQuickWidgets sharing one QQmlEngine; the detail page puts a pyqtgraph chart beside
its QML parts. Engine work runs on the worker thread (``EngineWorker``) and the scheduler's
thread; their results arrive here as queued signals and go into the view models.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer, QUrl, Signal
from PySide6.QtGui import QCloseEvent, QKeySequence, QResizeEvent, QShortcut
from PySide6.QtQuickWidgets import QQuickWidget
from PySide6.QtWidgets import QHBoxLayout, QMainWindow, QStackedWidget, QVBoxLayout, QWidget

from app.security import PinGuard
from app.ui import format as fmt
from app.ui.lock import LockViewModel
from app.ui.qml import load_page, shared_engine
from app.ui.theme import theme

# The rest of the window's modules (the other pages' view models, the engine's workers, the
# ``db`` package with sqlite-utils) are imported in ``finish``, after the lock screen's first
# frame when the window starts with ``lock_only`` (issue 15; tests/ui/test_first_frame_imports).
if TYPE_CHECKING:
    from app.ui.workers import EngineWorker, SchedulerThread, WorkerThread

logger = logging.getLogger(__name__)

PAGES = ("lock", "dashboard", "new", "detail", "settings", "performance")
REFRESH_DEBOUNCE_MS = 150
LIVE_PURPOSE = "LIVE mode: the PIN starts trading with real money."
ACCOUNT_REFRESH_MS = 30_000


class _Pages(dict):
    """The window's pages by name; a missing one (New, Settings, and Detail and Performance
    with pyqtgraph) is built the first time it is asked for, so the lock screen's first frame
    waits for neither their QML nor pyqtgraph."""

    def __init__(self, build: Callable[[str], QWidget], pages: dict[str, QWidget]) -> None:
        super().__init__(pages)
        self._build = build

    def __missing__(self, name: str) -> QWidget:
        page = self._build(name)
        self[name] = page
        return page


class MainWindow(QMainWindow):
    # GUI -> worker thread (queued: the worker lives on its own thread).
    requestStart = Signal()
    requestRefresh = Signal()
    requestAccount = Signal()
    requestPlugins = Signal()
    requestCreate = Signal(str, str, float, dict)
    requestAct = Signal(str, int, bool)
    requestChart = Signal(int, str)
    requestPerformance = Signal(str)  # the reference ticker

    def __init__(self, settings: Any, system: Any, *,
                 pin_now: Callable[[], float] = time.time,
                 idle_now: Callable[[], float] = time.monotonic,
                 run_scheduler: bool = True, replay: str = "", lock_only: bool = False) -> None:
        """The window, usable (PIN pad) before the engine exists: ``attach_engine`` later.

        ``system`` is the GUI thread's own connection to the system DB (PIN, UI settings).
        ``lock_only``: only the PIN pad now, its first frame cheap (issue 15): ``system`` is
        then what the pad's PinGuard reads (``app.ui.early_lock.EarlySettings``), and
        ``finish(store)`` builds the rest once the frame is on screen; the pad and what was
        typed on it stay.
        """
        super().__init__()
        self.setWindowTitle("AutoTrader")
        self.setObjectName("mainWindow")
        self.engine: Any = None
        self.settings = settings
        self.system = system
        self.mode = str(settings.effective_mode)
        self.qml = shared_engine()
        self._theme = theme()
        self._idle_now = idle_now
        self._replay = replay
        self._finished = False
        self._unlock_pending = False
        self._return_page = "dashboard"
        self._pending_pin_action: Callable[[], None] | None = None
        self._detail_loading = False
        self._pending_bars: list[tuple[int, float, float, float, float, float]] = []
        self._pending_fills: list[dict] = []
        self._engine_started = False
        self._live_armed = self.mode != "live"
        self._run_scheduler = run_scheduler
        self._closed = False
        self._idle_filter_on: Any = None
        self.worker: EngineWorker | None = None
        self.worker_thread: WorkerThread | None = None
        self.scheduler_thread: SchedulerThread | None = None

        # --- the PIN pad: all the first frame shows ------------------------------------------
        self.guard = PinGuard(system, now=pin_now)
        self.lock_vm = LockViewModel(self.guard, self)
        central = QWidget(self)
        self._column = QVBoxLayout(central)
        self._column.setContentsMargins(0, 0, 0, 0)
        self._column.setSpacing(0)
        self.stack = QStackedWidget(central)
        self._page = "lock"
        self._docked = False
        self._column.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        # Pages change their layout with the window's shape (portrait, wide); their landscape
        # minimums must not stop the window from becoming 480 px wide.
        self.setMinimumSize(320, 320)
        if lock_only:
            from app.ui.early_lock import EarlyHeader

            strip: Any = EarlyHeader(self)  # the real header's view model comes in finish
        else:
            strip = self._make_header_vm()
        self.pages: dict[str, QWidget] = _Pages(self._build_page, {
            "lock": load_page(self.qml, "LockPage.qml", {"lock": self.lock_vm,
                                                         "header": strip}),
        })
        self.stack.addWidget(self.pages["lock"])
        self.lock_vm.unlocked.connect(self._on_unlocked)
        self.lock("unlock" if self.guard.is_set else "setup")
        if not lock_only:
            self.finish(system)

    def _make_header_vm(self) -> Any:
        from app.ui.header import HeaderViewModel

        self.header_vm = HeaderViewModel(None, None, self.mode, self)
        self.header_vm.set_live_armed(self._live_armed)
        self.header_vm.set_replay(self._replay)  # ``run --replay DAY``
        return self.header_vm

    @property
    def closed(self) -> bool:
        """Has the window shut down?"""
        return self._closed

    @property
    def finished(self) -> bool:
        """Is the whole window built (not only the PIN pad)?"""
        return self._finished

    def finish(self, system: Any, settings: Any = None) -> None:
        """Build the rest of the window around the PIN pad: view models, header, dashboard,
        idle lock, wiring. ``system``: the GUI thread's system store, open and migrated;
        ``settings``: with the stored ones applied (``app.ui.app.apply_stored_settings``).
        The pad keeps its state (what was typed, a check in progress)."""
        if self._finished or self._closed:
            return
        from app.ui.backtest_job import BacktestJob
        from app.ui.dashboard import DashboardViewModel
        from app.ui.detail import DetailViewModel
        from app.ui.idle import IdleWatcher
        from app.ui.newalgo import BACKTEST_DAYS, NewAlgoViewModel
        from app.ui.performance import PerformanceViewModel
        from app.ui.settings_vm import SettingsViewModel, stored_idle_seconds
        from app.ui.workers import EngineBridge

        self.system = system
        if settings is not None:
            self.settings = settings
        settings = self.settings
        # --- view models -------------------------------------------------------------------
        if not hasattr(self, "header_vm"):
            self._make_header_vm()
            self.pages["lock"].rootObject().setProperty("header", self.header_vm)
        self.dash_vm = DashboardViewModel(self)
        self.new_vm = NewAlgoViewModel(self)
        # "Backtest last 5 days": a process of its own, never the engine worker's thread.
        self.backtest_job = BacktestJob(settings, self)
        self.new_vm.backtestRequested.connect(
            lambda seq, plugin, ticker, capital, params: self.backtest_job.start(
                seq, plugin, ticker, BACKTEST_DAYS, capital, params))
        self.new_vm.backtestCancelRequested.connect(self.backtest_job.cancel)
        self.backtest_job.done.connect(self.new_vm.on_backtest_done)
        self.backtest_job.failed.connect(self.new_vm.on_backtest_failed)
        self.detail_vm = DetailViewModel(self)
        self.settings_vm = SettingsViewModel(settings, system, None, self.mode, self)
        self.perf_vm = PerformanceViewModel(
            parent=self, reference=str(getattr(settings.ui, "performance_reference", "SPY")))
        self.cards = self.dash_vm.cards
        self.bridge = EngineBridge(self)

        # --- widgets -----------------------------------------------------------------------
        central = self.centralWidget()
        self.header = load_page(self.qml, "Header.qml", {"header": self.header_vm}, central)
        self.header.setVisible(self._page != "lock")  # before the layout would show it
        self._column.insertWidget(0, self.header)
        self.pages["dashboard"] = load_page(self.qml, "Dashboard.qml", {"dash": self.dash_vm})
        # Every page but the lock screen sits in a holder: New, Settings, Detail and
        # Performance are built into theirs when first opened (``_build_page``), and on a wide
        # screen Detail moves beside the cards (``_dock``), where both names show the
        # dashboard's holder.
        self._holders: dict[str, QWidget] = {}
        self._holder_rows: dict[str, QHBoxLayout] = {}
        for name in ("dashboard", "new", "detail", "settings", "performance"):
            holder = QWidget()
            holder.setObjectName(f"{name}Holder")
            box = QHBoxLayout(holder)
            box.setContentsMargins(0, 0, 0, 0)
            box.setSpacing(0)
            if name in self.pages:
                box.addWidget(self.pages[name], 1)
            self._holders[name] = holder
            self._holder_rows[name] = box
            self.stack.addWidget(holder)

        # --- idle lock ---------------------------------------------------------------------
        self.idle = IdleWatcher(stored_idle_seconds(system, settings.ui.idle_lock_seconds),
                                now=self._idle_now, parent=self)
        self.idle.idle.connect(self.lock)
        self.settings_vm.idleChanged.connect(self.idle.set_seconds)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_DEBOUNCE_MS)
        self._refresh_timer.timeout.connect(self.requestRefresh)
        self._account_timer = QTimer(self)
        self._account_timer.setInterval(ACCOUNT_REFRESH_MS)
        self._account_timer.timeout.connect(self.requestAccount)
        self._connect_views()
        # Ctrl+Q quits (a kiosk window has no title bar; the Pi's service restarts it anyway).
        # Here, not with the pad: ``Qt``'s first use builds its ~100 Python enums (15-40 ms).
        from PySide6.QtCore import Qt

        quit_shortcut = QShortcut(QKeySequence("Ctrl+Q"), self)
        quit_shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
        quit_shortcut.activated.connect(self.close)
        self.dash_vm.set_message("Starting the engine\u2026", sticky=True)
        self._finished = True
        self.idle.arm(self._page != "lock")
        self._watch_input()
        self._fit(self.width(), self.height())
        self.show_page(self._page)
        if self._unlock_pending:  # unlocked before this was built
            self._unlock_pending = False
            self._on_unlocked()

    def attach_engine(self, engine: Any, scheduler: Any) -> None:
        """Wire a built engine: listener, worker thread, start (reconcile) off the GUI thread."""
        if self._closed:
            return
        self.engine = engine
        if str(engine.mode) != self.mode:
            self.mode = str(engine.mode)
            self._live_armed = self.mode != "live"
            self.header_vm.set_mode(self.mode, self._live_armed)
            if self.mode == "live" and self.current_page() == "lock":
                self.lock_vm.start(self.lock_vm.mode if self.lock_vm.mode != "confirm"
                                   else "unlock", LIVE_PURPOSE)
        self.header_vm.set_clock(engine.clock, engine.calendar)
        from db.calendar import exchange_time

        self.cards.set_clock(lambda: exchange_time(engine.clock.now()).strftime("%H:%M"))
        self.settings_vm.set_engine(engine)  # its clock, its risk guards to show and change
        self.perf_vm.set_today(lambda: exchange_time(engine.clock.now()).date())
        engine.add_listener(self.bridge)
        from app.control.server import start_control

        start_control(engine, self.settings.data_path)  # ``autotrader algo``: closed with it
        from app.ops.operations import start_operations

        start_operations(engine, self.settings)  # notifications, snapshots, status page
        feed = getattr(engine, "feed", None)
        if feed is not None:
            feed.add_status_listener(self.bridge.on_feed_status)
        from app.ui.workers import EngineWorker, SchedulerThread, WorkerThread

        self.worker = EngineWorker(engine, self.settings)
        self.worker_thread = WorkerThread(self.worker, self)
        self.scheduler_thread = (SchedulerThread(scheduler, self)
                                 if scheduler is not None else None)
        self._connect_worker()
        self.worker_thread.start()
        self._account_timer.start()
        self.requestStart.emit()
        if self.current_page() == "new" or self._return_page == "new":
            self.requestPlugins.emit()
        if self.current_page() == "performance":
            self.requestPerformance.emit(self.perf_vm.reference)

    def _build_page(self, name: str) -> QWidget:
        """New, Settings, Detail or Performance, the first time it is asked for."""
        if name in ("new", "settings"):
            page: QWidget = (
                load_page(self.qml, "NewAlgorithm.qml", {"flow": self.new_vm}) if name == "new"
                else load_page(self.qml, "Settings.qml", {"prefs": self.settings_vm}))
            self._holder_rows[name].addWidget(page, 1)
            return page
        if name == "detail":
            from app.ui.detail import DetailPage

            page = DetailPage(self.qml, self.detail_vm)
            self.pages[name] = page
            self._place_detail()
            return page
        if name == "performance":
            from app.ui.performance_page import PerformancePage

            page = PerformancePage(self.qml, self.perf_vm)
            self._holder_rows[name].addWidget(page, 1)
            return page
        raise KeyError(name)

    @property
    def chart(self) -> Any:
        """Detail's price chart (building Detail if it was never opened)."""
        return self.pages["detail"].chart

    def engine_failed(self, message: str) -> None:
        self.dash_vm.set_message(f"The engine could not start: {message}", error=True)

    # --- wiring ----------------------------------------------------------------------------
    def _connect_worker(self) -> None:
        w = self.worker
        assert w is not None
        self.requestStart.connect(w.start_engine)
        self.requestRefresh.connect(w.refresh)
        self.requestAccount.connect(w.refresh_account)
        self.requestPlugins.connect(w.load_plugins)
        self.requestCreate.connect(w.create)
        self.requestAct.connect(w.act)
        self.requestChart.connect(w.load_chart)
        self.requestPerformance.connect(w.load_performance)
        self.new_vm.tickerCheckRequested.connect(w.check_ticker)  # queued: w is on its thread

        w.started.connect(self._on_engine_started)
        w.startFailed.connect(self.engine_failed)
        w.views.connect(self._on_views)
        w.account.connect(self._on_account)
        w.today.connect(self.header_vm.set_today)
        w.plugins.connect(self.new_vm.set_plugins)
        w.created.connect(self.new_vm.on_created)
        w.createFailed.connect(self.new_vm.on_failed)
        w.tickerChecked.connect(self.new_vm.on_ticker_checked)
        w.actionDone.connect(self._on_action_done)
        w.chart.connect(self._on_chart)
        w.performance.connect(self.perf_vm.set_data)

    def _connect_views(self) -> None:
        b = self.bridge
        b.tick.connect(self.schedule_refresh)
        b.algorithmsChanged.connect(self.schedule_refresh)
        b.fill.connect(self._on_fill)
        b.snapshot.connect(self._on_snapshot)
        b.bar.connect(self._on_bar)
        b.feedStatus.connect(self.header_vm.set_stream)

        self.lock_vm.confirmed.connect(self._on_pin_confirmed)
        self.lock_vm.cancelled.connect(self._on_pin_cancelled)
        self.lock_vm.pinChanged.connect(self._on_pin_changed)

        d = self.dash_vm
        d.changed.connect(lambda: self.header_vm.set_counts(self.dash_vm.countText))
        d.openRequested.connect(self.open_detail)
        d.newRequested.connect(self.open_new)
        d.settingsRequested.connect(lambda: self._open_settings())
        d.performanceRequested.connect(self.open_performance)
        self.perf_vm.backRequested.connect(lambda: self.show_page("dashboard"))
        self.perf_vm.reloadRequested.connect(self.requestPerformance)
        d.lockRequested.connect(lambda: self.lock())
        d.stopAllRequested.connect(self._on_stop_all)

        self.new_vm.createRequested.connect(self.requestCreate)
        self.new_vm.finished.connect(self._on_created)
        self.new_vm.closed.connect(lambda: self.show_page("dashboard"))

        self.detail_vm.backRequested.connect(lambda: self.show_page("dashboard"))
        self.detail_vm.actionRequested.connect(self._on_detail_action)

        self.settings_vm.backRequested.connect(lambda: self.show_page("dashboard"))
        self.settings_vm.changePinRequested.connect(self._change_pin)
        self.settings_vm.guard_edit.pinRequested.connect(  # loosening a guard in LIVE
            lambda why: self.ask_pin(why, self.settings_vm.guard_edit.saveConfirmed))
        self.settings_vm.restartRequested.connect(self.close)  # the kiosk's service restarts it

    # --- navigation ------------------------------------------------------------------------
    def current_page(self) -> str:
        """The page in use ('detail' also when it is shown beside the dashboard)."""
        return self._page

    def show_page(self, name: str) -> None:
        self._page = name
        holder = "dashboard" if self._docked and name in ("dashboard", "detail") else name
        if (holder == "dashboard" and self._docked) or name == "detail":
            self.pages["detail"]  # built now if never opened: shown beside the cards
        self.stack.setCurrentWidget(self._holders.get(holder) or self.pages[name]
                                    if self._finished else self.pages["lock"])
        if self._finished:
            self.header.setVisible(name != "lock")
        self.pages[name].setFocus()

    @property
    def docked(self) -> bool:
        """Is Detail shown beside the dashboard (a wide screen)?"""
        return self._docked

    def _dock(self, wide: bool) -> None:
        """Wide screens: Detail beside the cards (two card columns); else a page of its own."""
        if wide == self._docked or not self._finished:
            return
        self._docked = wide
        dash = self.pages["dashboard"]
        if wide:
            dash.setFixedWidth(self._docked_dash_width())
        else:
            dash.setMinimumWidth(0)
            dash.setMaximumWidth(16_777_215)
        if "detail" in self.pages:  # else placed when first built
            self._place_detail()
        self.detail_vm.set_docked(wide)
        self.dash_vm.set_selected(self.detail_vm.algo_id if wide else -1)
        self.show_page(self._page)
        if wide:
            self._select_first()

    def _place_detail(self) -> None:
        """Detail beside the cards (docked) or in its own holder."""
        detail = self.pages["detail"]
        self._holder_rows["dashboard" if self._docked else "detail"].addWidget(detail, 1)
        detail.show()

    def _docked_dash_width(self) -> int:
        """Two card columns (the grid's cards are 240 design px wide) and the margins."""
        return self._theme.px(240) * 2 + self._theme.px(8) * 2 + 4

    def _select_first(self) -> None:
        """Beside the dashboard, Detail always shows an algorithm: the first card's."""
        if self._docked and self.detail_vm.algo_id < 0 and self.cards.count():
            self.open_detail(self.cards.ids()[0], show=False)

    def lock(self, mode: str = "unlock") -> None:
        """Show the PIN pad; the page in use comes back after unlocking."""
        current = self.current_page()
        if current != "lock":
            self._return_page = current
        purpose = ""
        if self.mode == "live" and not self._live_armed:
            purpose = LIVE_PURPOSE
        self._pending_pin_action = None
        self.lock_vm.start(mode, purpose)
        if self._finished:
            self.idle.arm(False)
        self.show_page("lock")

    def ask_pin(self, purpose: str, action: Callable[[], None]) -> None:
        """Run ``action`` once the PIN is confirmed; Cancel returns to the page in use."""
        self._return_page = self.current_page()
        self._pending_pin_action = action
        self.lock_vm.start("confirm", purpose)
        self.show_page("lock")

    def _on_unlocked(self) -> None:
        if not self._finished:  # the rest of the window is not built yet: done in finish()
            self._unlock_pending = True
            return
        self.idle.arm(True)
        if not self._live_armed:
            self._live_armed = True
            self.header_vm.set_live_armed(True)
            logger.warning("LIVE trading confirmed with the PIN")
            self._maybe_start_scheduler()
        self.show_page(self._return_page if self._return_page != "lock" else "dashboard")

    def _on_pin_confirmed(self) -> None:
        action, self._pending_pin_action = self._pending_pin_action, None
        self.show_page(self._return_page)
        if action is not None:
            action()

    def _on_pin_cancelled(self) -> None:
        self._pending_pin_action = None
        self.show_page(self._return_page)

    def _on_pin_changed(self) -> None:
        self.show_page("settings")
        self.settings_vm.set_message("PIN changed.")

    def _change_pin(self) -> None:
        self._return_page = "settings"
        self.lock_vm.start("change_old")
        self.show_page("lock")

    def _open_settings(self) -> None:
        self.settings_vm.refreshLog()
        self.show_page("settings")

    def open_performance(self) -> None:
        """The Performance screen, its snapshots read again on the worker thread."""
        self.perf_vm.open()
        self.show_page("performance")

    def open_new(self) -> None:
        self.new_vm.reset()
        self.new_vm.set_free(self.header_vm.free())
        self.requestPlugins.emit()
        self.show_page("new")

    def open_detail(self, algo_id: int, show: bool = True) -> None:
        card = self.cards.card(algo_id)
        if card is None:
            return
        self.dash_vm.set_selected(algo_id if self._docked else -1)
        self.detail_vm.show(card)
        self.detail_vm.transactions.set_transactions([])
        self.chart.reset()
        self._detail_loading = True
        self._pending_bars = []
        self._pending_fills = []
        self.requestChart.emit(algo_id, card["ticker"])
        if show:
            self.show_page("detail")

    # --- engine results --------------------------------------------------------------------
    def schedule_refresh(self, *args: Any) -> None:
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _on_engine_started(self, note: str) -> None:
        self._engine_started = True
        self.dash_vm.set_message(note, error=True) if note else self.dash_vm.set_message("")
        self._maybe_start_scheduler()

    def _maybe_start_scheduler(self) -> None:
        t = self.scheduler_thread
        if (self._run_scheduler and t is not None and self._engine_started and self._live_armed
                and not t.isRunning() and not self._closed):
            logger.info("scheduler starting (%s mode)", self.mode)
            t.start()

    def _on_views(self, views: list, sparks: dict) -> None:
        self.cards.set_views(views, sparks)
        if self.detail_vm.algo_id >= 0:
            self.detail_vm.update_card(self.cards.card(self.detail_vm.algo_id))
        else:
            self._select_first()

    def _on_account(self, account: dict) -> None:
        self.header_vm.set_account(account)
        self.new_vm.set_free(self.header_vm.free())

    def _on_bar(self, ticker: str, ts: int, close: float, o: float = math.nan,
                h: float = math.nan, lo: float = math.nan, v: float = 0.0) -> None:
        self.cards.apply_bar(ticker, ts, close)
        if self.detail_vm.algo_id >= 0 and ticker == self.detail_vm.ticker:
            bar = (ts, close, close if math.isnan(o) else o, close if math.isnan(h) else h,
                   close if math.isnan(lo) else lo, v)
            if self._detail_loading:
                self._pending_bars.append(bar)
            else:
                self.chart.append(*bar)
            self.detail_vm.update_card(self.cards.card(self.detail_vm.algo_id))

    def _on_snapshot(self, view: dict) -> None:
        """The engine's figures for one algorithm, pushed after a fill, stop or pause."""
        self.cards.apply_snapshot(view)
        if view.get("id") == self.detail_vm.algo_id:
            self.detail_vm.update_card(self.cards.card(self.detail_vm.algo_id))

    def _on_fill(self, algo_id: int, tx: dict) -> None:
        if algo_id == self.detail_vm.algo_id:
            if self._detail_loading:
                self._pending_fills.append(tx)  # may or may not be in the history read
            else:
                self.chart.add_marker(tx)
                self.detail_vm.transactions.add(tx)
        self.schedule_refresh()

    def _on_chart(self, algo_id: int, ts: Any, bars: Any, txs: list, params: dict,
                  indicators: list) -> None:
        if algo_id != self.detail_vm.algo_id:
            return
        from app.ui.detail import indicator_windows

        self.chart.set_indicators(indicator_windows(indicators, params))
        # bars: open, high, low, close, volume per row
        self.chart.set_series(ts, bars[:, 3], bars[:, [0, 1, 2, 4]])
        for bar in self._pending_bars:
            self.chart.append(*bar)
        self._pending_bars = []
        seen = {t.get("id") for t in txs}
        txs = txs + [t for t in self._pending_fills if t.get("id") not in seen]
        self._pending_fills = []
        self._detail_loading = False
        self.chart.set_markers(txs)
        self.detail_vm.transactions.set_transactions(txs)

    def _closed_note(self) -> str:
        if self.header_vm.market_is_open():
            return ""
        return " The market is closed: this sells at the next open."

    def _on_stop_all(self, liquidate: bool) -> None:
        if not liquidate:
            self.requestAct.emit("stop_all", -1, False)
            return
        held = [s for s in (self.cards.state(i) for i in self.cards.ids())
                if s and int(s.get("position") or 0) > 0]
        value = sum(int(s["position"]) * float(s.get("last_price") or s.get("avg_cost") or 0)
                    for s in held)
        what = (f"sells {len(held)} position{'s' if len(held) != 1 else ''}, about "
                f"{fmt.money(value, cents=False)}" if held else "holds no shares to sell")
        self.ask_pin(f"Stop every algorithm and sell? This {what}.{self._closed_note()}",
                     self._stop_all_and_sell)

    def _stop_all_and_sell(self) -> None:
        self.dash_vm.set_message("Stopping all algorithms and selling\u2026", sticky=True)
        self.requestAct.emit("stop_all", -1, True)

    def _on_detail_action(self, action: str, algo_id: int, liquidate: bool) -> None:
        ticker = self.detail_vm.ticker
        if action == "delete":
            self.ask_pin(f"Delete the {ticker} algorithm? Its history stays in the database.",
                         lambda: self._delete(algo_id))
            return
        if action == "stop" and liquidate:
            st = self.cards.state(algo_id) or {}
            qty = int(st.get("position") or 0)
            px = st.get("last_price") or st.get("avg_cost")
            what = (f"sell {qty:,} {ticker}, about {fmt.money(qty * float(px), cents=False)}"
                    if qty and px else f"sell {qty:,} {ticker}" if qty else "sell nothing (no "
                    "shares held)")
            self.ask_pin(f"Stop {ticker} and {what}?{self._closed_note()}",
                         lambda: self._stop_and_sell(algo_id))
            return
        self.requestAct.emit(action, algo_id, liquidate)

    def _stop_and_sell(self, algo_id: int) -> None:
        self.detail_vm.set_busy("Stopping and selling\u2026")
        self.requestAct.emit("stop", algo_id, True)

    def _delete(self, algo_id: int) -> None:
        self.detail_vm.set_busy("Deleting\u2026")
        self.requestAct.emit("delete", algo_id, False)

    def _on_action_done(self, action: str, algo_id: int, error: str) -> None:
        words = {"stop": "Stopped", "resume": "Resumed", "delete": "Deleted",
                 "stop_all": "All algorithms stopped", "accept": "Broker position accepted"}
        if action == "stop_all":
            self.dash_vm.set_message(error or words[action] + ".", error=bool(error))
            return
        if error:
            self.detail_vm.set_message(fmt.human(error))
            return
        if action == "delete":
            self.detail_vm.show(None)
            self.dash_vm.set_selected(-1)
            self.show_page("dashboard")
            self.dash_vm.set_message("Algorithm deleted; its history is kept.")
        else:
            self.detail_vm.set_message(words.get(action, action) + ".")

    def _on_created(self, algo_id: int) -> None:
        self.show_page("dashboard")
        self.dash_vm.set_message("Algorithm created: it trades from the next minute.")

    # --- window ----------------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:  # noqa: N802
        self._watch_input()
        super().showEvent(event)

    def _watch_input(self) -> None:
        # Watch input on the top-level QWindow (every touch, click and key passes it) rather
        # than on the whole application, which would route every event through Python.
        handle = self.windowHandle()
        if not self._finished or handle is None or handle is self._idle_filter_on:
            return
        if self._idle_filter_on is not None:
            self._idle_filter_on.removeEventFilter(self.idle)
        handle.installEventFilter(self.idle)
        self._idle_filter_on = handle

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        self._fit(event.size().width(), event.size().height())
        super().resizeEvent(event)

    def _fit(self, width: int, height: int) -> None:
        self._theme.set_size(width, height)
        if not self._finished:  # the PIN pad alone: it follows the theme
            return
        self.header.setFixedHeight(self._theme.headerHeight)
        if self._docked and self._theme.wide:  # the scale may have changed
            self.pages["dashboard"].setFixedWidth(self._docked_dash_width())
        self._dock(self._theme.wide)

    def shutdown(self) -> None:
        """Stop the scheduler (after its tick in progress), the worker, then the engine."""
        if self._closed:
            return
        self._closed = True
        if not self._finished:  # closed before the rest was built: only the pad to drop
            self.pages["lock"].setSource(QUrl())
            return
        self.bridge.stop()
        self.backtest_job.shutdown()  # killed, never waited for
        self.idle.arm(False)
        if self._idle_filter_on is not None:
            self._idle_filter_on.removeEventFilter(self.idle)
            self._idle_filter_on = None
        t = self.scheduler_thread
        if t is not None and t.isRunning() and not t.stop():
            logger.warning("the scheduler did not stop within 10 s")
        if self.worker_thread is not None:
            self.worker_thread.stop()
        self.settings_vm.guard_edit.stop()  # after a risk guard change being saved
        # Drop the QML scenes now, while their view models and the engine surely exist.
        for qw in self.findChildren(QQuickWidget):
            qw.setSource(QUrl())
        if self.engine is not None:
            try:
                self.engine.close()
            except Exception:  # noqa: BLE001
                logger.exception("closing the engine failed")

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)
