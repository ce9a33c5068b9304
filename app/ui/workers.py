"""Threads around the Qt-free engine.

- ``EngineBridge`` is the engine's listener: its methods run on engine threads (scheduler,
  feed, broker) and only emit signals carrying plain data; Qt queues them to the GUI thread.
- ``EngineWorker`` lives on its own QThread and does everything that may touch the network or
  the DB for more than a moment: starting (reconcile), creating an algorithm (ticker check and
  backfill), stop/resume/delete, reading views, chart history and the account.
- ``SchedulerThread`` runs the scheduler's blocking loop; stop = set the flag, quit, wait.

The GUI sends work to the worker through queued signals and never waits for it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, is_dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.engine.plugins import param_range
from app.ops.performance import benchmark_series
from app.ui.inbox import GuiInbox
from app.ui.portfolio import DayBase, today_figures
from db.calendar import exchange_time

logger = logging.getLogger(__name__)

CHART_BARS = 100_000
SPARK_BARS = 60
REFERENCE = "SPY"  # the Performance screen's buy-and-hold reference
FAR_FUTURE = 2**62


def _plain(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    return obj


class EngineBridge(QObject):
    """EngineListener -> Qt signals, emitted on the GUI thread only.

    The engine calls these methods from its own threads, some of which are plain Python
    threads (the synthetic feed, websocket-client's reader). Emitting a Qt signal from a
    thread Qt does not know crashed PySide6 6.8 (PYSIDE-3124, seen as a segfault in
    ``test_bar_updates_card_and_chart`` 3 runs in 5), so nothing here touches Qt off the GUI
    thread: the calls only post plain data to a ``GuiInbox``, and the GUI thread emits the
    signals when it drains it. Every receiver therefore runs on
    the GUI thread, whatever it is (a slot, a method or a lambda).
    """

    tick = Signal(object)          # TickResult
    fill = Signal(int, object)     # algo_id, transaction dict
    algorithmsChanged = Signal()
    # ticker, epoch seconds, close, open, high, low, volume
    bar = Signal(str, int, float, float, float, float, float)
    feedStatus = Signal(str, str)  # state, detail
    snapshot = Signal(object)      # AlgoView as a dict: one algorithm after a fill/stop/pause

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.inbox = GuiInbox(self)

    # EngineListener protocol (any thread) ------------------------------------------------
    def on_tick(self, result: Any) -> None:
        self.inbox.post(self.tick.emit, result)

    def on_fill(self, algo_id: int, transaction: dict) -> None:
        self.inbox.post(self.fill.emit, int(algo_id), dict(transaction))

    def on_algorithms_changed(self) -> None:
        self.inbox.post(self.algorithmsChanged.emit)

    def on_snapshot(self, view: Any, account: Any) -> None:
        self.inbox.post(self.snapshot.emit, _plain(view))

    def on_bar(self, bar: Any) -> None:
        c = float(bar.c)
        self.inbox.post(self.bar.emit, str(bar.ticker), int(bar.ts), c,
                        float(getattr(bar, "o", c)), float(getattr(bar, "h", c)),
                        float(getattr(bar, "l", c)), float(getattr(bar, "v", 0.0) or 0.0))

    # Feed status listener (any thread) ---------------------------------------------------
    def on_feed_status(self, status: Any) -> None:
        self.inbox.post(self.feedStatus.emit, str(status.state),
                        str(getattr(status, "detail", "") or ""))

    def stop(self) -> None:
        self.inbox.stop()


class EngineWorker(QObject):
    """Engine calls that may block, run on the worker thread; results come back as signals."""

    started = Signal(str)                  # '' or a note about reconciliation
    startFailed = Signal(str)
    views = Signal(list, dict)             # [AlgoView as dict], {ticker: [closes]}
    today = Signal(float, float)           # today's P&L, the algorithms' value at the day's start
    account = Signal(dict)
    created = Signal(int, str)             # algo id, ticker
    createFailed = Signal(str, str, float)  # kind ('ticker'|'capital'|'plugin'|'other'), message, free
    actionDone = Signal(str, int, str)     # action, algo id, error ('' = ok)
    # algo id, ts array, (n, 5) array of open/high/low/close/volume, transactions, effective
    # plugin parameters, the plugin's declared chart indicators
    chart = Signal(int, object, object, list, dict, list)
    # [dict(name, display_name, description, params, error, ranges)]
    plugins = Signal(list)
    # request number, ticker, known?, text, last price (-1 unknown), final answer?
    tickerChecked = Signal(int, str, bool, str, float, bool)
    performance = Signal(list, list, str)  # snapshot rows, [(day, reference close)], reference

    def __init__(self, engine: Any, settings: Any = None) -> None:
        super().__init__()
        self._engine = engine
        self._settings = settings
        self._plugin_params: dict[str, dict] = {}
        self._plugin_indicators: dict[str, list] = {}
        self._plugin_names: dict[str, str] = {}  # module -> its declared display_name or ''
        self._unnamed: set[str] = set()  # plugins not found when last listed
        self._day_base = DayBase()

    def _note_plugin(self, p: Any) -> None:
        self._plugin_params[p.name] = dict(p.params or {})
        named = getattr(p.cls, "display_name", None) if p.cls is not None else None
        self._plugin_names[p.name] = named if isinstance(named, str) else ""
        declared = getattr(p.cls, "indicators", None) if p.cls is not None else None
        try:
            self._plugin_indicators[p.name] = [tuple(i) for i in (declared or ())]
        except TypeError:
            logger.warning("plugin %s: 'indicators' is not a list of (kind, length)", p.name)
            self._plugin_indicators[p.name] = []

    # --- lifecycle -------------------------------------------------------------------------
    @Slot()
    def start_engine(self) -> None:
        try:
            report = self._engine.start()
        except Exception as e:  # noqa: BLE001 - shown to the user, logged with traceback
            logger.exception("engine start failed")
            self.startFailed.emit(str(e))
            return
        note = ""
        diffs = getattr(report, "position_diffs", None)
        if diffs:
            note = "Positions differ from the broker: " + ", ".join(
                f"{d.symbol} ledger {d.ledger:g} / broker {d.broker:g}" for d in diffs)
        self.started.emit(note)
        self.refresh()

    # --- reads -----------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        """Cards and account figures, read here so the GUI never waits on the DB or broker."""
        try:
            views = [_plain(v) for v in self._engine.algorithm_views()]
            self._name_plugins(views)
            market = self._engine.market
            sparks: dict[str, list[float]] = {}
            for t in {v["ticker"] for v in views}:
                sparks[t] = [r[4] for r in market.last_n_rows(t, SPARK_BARS, FAR_FUTURE)]
            self.views.emit(views, sparks)
        except Exception:  # noqa: BLE001
            logger.exception("reading the algorithms failed")
            views = None
        if views is not None:
            try:
                day = exchange_time(self._engine.clock.now()).date()
                base = self._day_base.get(self._engine.system.conn, day)
                self.today.emit(*today_figures(views, base))
            except Exception:  # noqa: BLE001 - a header figure, never worth more than a log line
                logger.exception("reading today's P&L failed")
        self.refresh_account()

    def _name_plugins(self, views: list[dict[str, Any]]) -> None:
        """Each view's ``plugin_display_name``: its plugin's declared ``display_name`` ('' when
        none; the cards fall back to the module name made readable). Plugins are listed once,
        and again only when a view names one not seen yet."""
        missing = {v["plugin"] for v in views} - self._plugin_names.keys() - self._unnamed
        if missing:
            try:
                for p in self._engine.plugins():
                    self._note_plugin(p)
            except Exception:  # noqa: BLE001 - a label, never worth more than a log line
                logger.exception("listing the plugins for their names failed")
            self._unnamed |= missing - self._plugin_names.keys()
        for v in views:
            v["plugin_display_name"] = self._plugin_names.get(v["plugin"], "")

    @Slot()
    def refresh_account(self) -> None:
        try:
            self.account.emit(dict(self._engine.account_summary()))
        except Exception as e:  # noqa: BLE001 - e.g. the broker is unreachable
            logger.warning("account summary unavailable: %s", e)
            self.account.emit({"error": str(e)})

    @Slot()
    def load_plugins(self) -> None:
        out = []
        try:
            for p in self._engine.plugins():
                self._note_plugin(p)
                out.append({"name": p.name, "description": p.description or "",
                            "display_name": self._plugin_names[p.name],
                            "params": dict(p.params or {}), "error": p.error or "",
                            "ranges": {k: param_range(p.cls, k) for k in (p.params or {})}})
        except Exception as e:  # noqa: BLE001
            logger.exception("listing plugins failed")
            out.append({"name": "", "description": "", "params": {}, "error": str(e)})
        self.plugins.emit(out)

    @Slot(int, str)
    def load_chart(self, algo_id: int, ticker: str) -> None:
        import numpy as np

        params: dict = {}
        indicators: list = []
        try:
            view = _plain(self._engine.algorithm_view(algo_id))
            if view["plugin"] not in self._plugin_params:
                for p in self._engine.plugins():
                    self._note_plugin(p)
            params = {**self._plugin_params.get(view["plugin"], {}), **(view["params"] or {})}
            indicators = list(self._plugin_indicators.get(view["plugin"], []))
        except Exception:  # noqa: BLE001 - the chart still shows prices
            logger.exception("reading the parameters of algorithm %s failed", algo_id)
        try:
            rows = self._engine.market.last_n_rows(ticker, CHART_BARS, FAR_FUTURE)
            ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            bars = np.array([r[1:6] for r in rows], dtype=float).reshape(len(rows), 5)
            txs = list(self._engine.system.transactions(algo_id))
        except Exception:  # noqa: BLE001
            logger.exception("loading the chart for %s failed", ticker)
            ts, bars, txs = np.zeros(0, dtype=np.int64), np.zeros((0, 5)), []
        self.chart.emit(algo_id, ts, bars, txs, params, indicators)

    @Slot(str)
    def load_performance(self, reference: str = REFERENCE) -> None:
        """Every daily snapshot, and the reference ticker's close on each of their days."""
        from db import performance as perf

        rows: list = []
        bench: list = []
        try:
            rows = perf.all_since(self._engine.system.conn, "")
            days = sorted({str(r["day"]) for r in rows})
            bench = benchmark_series(self._engine.market, self._engine.calendar, reference,
                                     days)
        except Exception:  # noqa: BLE001 - the page says what it could not read
            logger.exception("reading the performance snapshots failed")
        self.performance.emit(rows, bench, reference)

    # --- actions ---------------------------------------------------------------------------
    @Slot(str, str, float, dict)
    def create(self, plugin: str, ticker: str, capital: float, params: dict) -> None:
        from app.engine.facade import (
            EngineError,
            InsufficientCapitalError,
            TickerRejectedError,
            UnknownPluginError,
        )

        t0 = time.monotonic()
        try:
            algo_id = self._engine.create_algorithm(plugin, ticker, capital, params or None)
        except TickerRejectedError as e:
            self.createFailed.emit("ticker", str(e), -1.0)
            return
        except InsufficientCapitalError as e:
            self.createFailed.emit("capital", str(e), float(getattr(e, "free", -1.0)))
            return
        except UnknownPluginError as e:
            self.createFailed.emit("plugin", str(e), -1.0)
            return
        except EngineError as e:
            self.createFailed.emit("other", str(e), -1.0)
            return
        except Exception as e:  # noqa: BLE001 - never lose the user's input over a bug
            logger.exception("creating %s on %s failed: %s", plugin, ticker, e)
            self.createFailed.emit("other", "Could not create the algorithm; the log has the "
                                   "details.", -1.0)
            return
        logger.info("created algorithm %s (%s on %s, $%.2f) in %.1f s", algo_id, plugin, ticker,
                    capital, time.monotonic() - t0)
        self.created.emit(int(algo_id), ticker)
        self.refresh()

    @Slot(int, str, object)
    def check_ticker(self, seq: int, ticker: str, dropped: Any = None) -> None:
        """The ticker step asks the broker before Next: a known, tradable symbol comes back
        as "AMZN · Amazon.com · $184.38" with its last price (its history loaded, as creating
        it would), anything else as the refusal. A symbol with no stored history is answered
        twice: its name at once (not final), then with the price once the history is in.

        ``dropped`` (a threading.Event) is set by the GUI once the user typed on: a request
        still queued is skipped, and a known prefix ("A" on the way to "AMZN") does not have
        its history loaded."""
        from app.broker.base import BrokerError, UnknownTickerError
        from app.ui import format as fmt

        def gone() -> bool:
            return dropped is not None and dropped.is_set()

        if gone():
            return

        def refuse(text: str) -> None:
            self.tickerChecked.emit(seq, ticker, False, text, -1.0, True)

        try:
            info = self._engine.broker.get_ticker(ticker)
        except UnknownTickerError:
            refuse(f"{ticker} is unknown to the broker. Check the symbol.")
            return
        except BrokerError as e:
            logger.warning("cannot check %s with the broker: %s", ticker, e)
            refuse(f"Cannot reach the broker to check {ticker} now; try again in a moment.")
            return
        except Exception:  # noqa: BLE001
            logger.exception("checking %s failed", ticker)
            refuse(f"Could not check {ticker}; the log has the details.")
            return
        if not getattr(info, "tradable", True) or not getattr(info, "active", True):
            refuse(f"{ticker} is not tradable at this broker.")
            return
        name = str(getattr(info, "name", "") or "")
        parts = [ticker] + ([name] if name and name != ticker else [])
        if gone():
            return
        feed = getattr(self._engine, "feed", None)
        if feed is not None and self._engine.market.latest_ts(ticker) is None:
            self.tickerChecked.emit(seq, ticker, True,
                                    " \u00b7 ".join(parts + ["loading its price\u2026"]),
                                    -1.0, False)
            if gone():
                return
            try:
                feed.prepare(ticker)
            except Exception as e:  # noqa: BLE001 - the create step tries again
                logger.warning("cannot load history for %s yet: %s", ticker, e)
        price = None
        try:
            price = self._engine.market.latest_price(ticker)
        except Exception:  # noqa: BLE001
            logger.exception("reading the last price of %s failed", ticker)
        ok_price = price is not None and price > 0
        self.tickerChecked.emit(seq, ticker, True, " \u00b7 ".join(
            parts + ([fmt.price(price)] if ok_price else [])),
            float(price) if ok_price else -1.0, True)

    @Slot(str, int, bool)
    def act(self, action: str, algo_id: int, liquidate: bool) -> None:
        """stop / resume / accept (the broker's position) / delete one algorithm, or stop_all
        (algo_id ignored)."""
        from app.engine.facade import EngineError

        e_ = self._engine
        try:
            if action == "stop":
                e_.stop_algorithm(algo_id, liquidate=liquidate)
            elif action == "resume":
                e_.resume_algorithm(algo_id)
            elif action == "accept":
                e_.accept_broker_position(e_.algorithm_view(algo_id).ticker)
            elif action == "delete":
                e_.delete_algorithm(algo_id)
            elif action == "stop_all":
                e_.stop_all(liquidate=liquidate)
            else:
                raise ValueError(f"unknown action {action!r}")
        except EngineError as e:  # a refusal worded for the user
            logger.warning("%s of algorithm %s refused: %s", action, algo_id, e)
            self.actionDone.emit(action, algo_id, str(e) or "refused")
            self.refresh()
            return
        except Exception:  # noqa: BLE001 - a bug or an outage: a sentence on screen, details logged
            logger.exception("%s of algorithm %s failed", action, algo_id)
            self.actionDone.emit(action, algo_id, f"Could not {action.replace('_', ' ')}; "
                                 "the log has the details.")
            self.refresh()
            return
        self.actionDone.emit(action, algo_id, "")
        self.refresh()


class SchedulerThread(QThread):
    """Runs ``scheduler.run(stop)`` until ``stop()``."""

    failed = Signal(str)

    def __init__(self, scheduler: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scheduler")
        self._scheduler = scheduler
        self._stop = threading.Event()

    def run(self) -> None:
        try:
            self._scheduler.run(self._stop)
        except Exception as e:  # noqa: BLE001
            logger.exception("the scheduler stopped with an error")
            self.failed.emit(str(e))

    def stop(self, timeout_ms: int = 10_000) -> bool:
        """Finish the tick in progress, then end. True if the thread ended in time."""
        self._stop.set()
        self.quit()
        return self.wait(timeout_ms)


class WorkerThread(QThread):
    """The QThread an ``EngineWorker`` is moved to."""

    def __init__(self, worker: EngineWorker, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("engine-worker")
        worker.moveToThread(self)
        self.worker = worker

    def stop(self, timeout_ms: int = 10_000) -> bool:
        self.quit()
        return self.wait(timeout_ms)


class EngineBuilder(QThread):
    """Runs ``build_engine`` off the GUI thread (the PIN pad shows meanwhile)."""

    built = Signal(object, object)  # engine, scheduler
    failed = Signal(str)

    def __init__(self, settings: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("engine-builder")
        self._settings = settings

    def run(self) -> None:
        from app.engine.runner import build_engine
        from app.engine.storage import wait_out_storage

        def waiting(message: str) -> None:  # a full disk or a foreign DB lock: said, retried
            logger.error("%s", message)
            self.failed.emit(message)

        try:
            engine, scheduler = wait_out_storage(lambda: build_engine(self._settings),
                                                 self._settings.data_path, say=waiting)
        except Exception as e:  # noqa: BLE001 - shown on the dashboard and logged
            logger.exception("building the engine failed")
            self.failed.emit(str(e))
            return
        self.built.emit(engine, scheduler)
