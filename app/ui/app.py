"""Start-up of the touchscreen app: QApplication, engine, window, event loop, orderly exit.

``app/cli.py`` calls ``run_gui`` when a display is present. Fullscreen with ``--kiosk`` or on
eglfs/linuxfb (one full-screen surface there anyway); a normal 800x480 window on a desktop.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
from datetime import timedelta
from typing import Any

logger = logging.getLogger(__name__)

FULLSCREEN_PLATFORMS = ("eglfs", "linuxfb", "vnc")


def _qt_message_handler(mode: Any, context: Any, message: str) -> None:
    from PySide6.QtCore import QtMsgType

    level = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
             QtMsgType.QtWarningMsg: logging.WARNING}.get(mode, logging.ERROR)
    logging.getLogger("qt").log(level, "%s", message)


def apply_stored_settings(settings: Any, system: Any = None) -> Any:
    """The demo speed chosen on the settings screen wins over the config's default value (a
    flag or environment variable still wins: the user asked for it explicitly). ``system``:
    an open system store to read it from (else one is opened and closed here)."""
    if settings.effective_mode != "demo" or settings.sources.get("demo.speed", "default") != "default":
        return settings
    from app.ui.settings_vm import stored_demo_speed
    from db.system import SystemStore

    try:
        store = system if system is not None else SystemStore(settings.system_db_path)
        speed = stored_demo_speed(store, settings.demo.speed)
        if store is not system:
            store.close()
    except Exception as e:  # noqa: BLE001 - the engine reports DB problems itself
        logger.warning("cannot read stored settings: %s", e)
        return settings
    if speed == settings.demo.speed:
        return settings
    return dataclasses.replace(settings, demo=dataclasses.replace(settings.demo, speed=speed))


def start_after_first_frame(window: Any, start: Any, fallback_ms: int | None = 2000) -> None:
    """Call ``start()`` once, just after any page of ``window`` has rendered its first frame
    (or after ``fallback_ms`` if none renders, e.g. a hidden window; None: only a frame)."""
    from PySide6.QtCore import QTimer

    state: dict[str, Any] = {"done": False, "links": []}

    def go() -> None:
        if state["done"]:
            return
        state["done"] = True
        for sig, slot in state["links"]:
            try:
                sig.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        start()

    def rendered() -> None:
        QTimer.singleShot(0, go)  # after the frame is handed to the screen

    for page in getattr(window, "pages", {}).values():
        if not hasattr(page, "quickWindow"):
            continue  # a widget page (charts)
        sig = page.quickWindow().afterRendering
        sig.connect(rendered)
        state["links"].append((sig, rendered))
    if fallback_ms is not None:
        QTimer.singleShot(fallback_ms, go)


def _start_heap_trimmer() -> None:
    from app.memtrim import start_heap_trimmer

    start_heap_trimmer()


def show_window(window: Any, screen: Any, fullscreen: bool) -> None:
    """Fullscreen (kiosk) or maximised on a desktop larger than 800x480; the geometry is set
    first, because without a window manager (X11 kiosk) nothing else sizes the window."""
    geo = screen.geometry() if screen is not None else None
    avail = screen.availableGeometry() if screen is not None else None
    if fullscreen:
        if geo is not None:
            window.setGeometry(geo)
        window.showFullScreen()
    elif avail is not None and (avail.width() > 800 or avail.height() > 480):
        window.setGeometry(avail)
        window.showMaximized()
    else:
        window.resize(800, 480)
        window.show()


class Startup:
    """The window as ``start_window`` opens it, and what comes after its first frame: the
    GUI thread's system store (``system``) and the engine's builder (``builder``), both None
    until then. ``on_built``: more slots for the builder's ``built`` signal (benchmarks)."""

    def __init__(self, settings: Any, window: Any, system: Any = None) -> None:
        self.settings = settings
        self.window = window
        self.system = system
        self.builder: Any = None
        self.code: int | None = None  # an exit code when the rest could not start
        self.on_built: list[Any] = []

    def start_engine(self) -> None:
        """The engine (plugins, DBs, the demo's first history), built off the GUI thread
        while the PIN pad is on screen."""
        from app.ui.workers import EngineBuilder

        if self.window.engine is not None or self.builder is not None:
            return
        builder = self.builder = EngineBuilder(self.settings, self.window)
        builder.built.connect(self.window.attach_engine)
        builder.failed.connect(self.window.engine_failed)
        for slot in self.on_built:
            builder.built.connect(slot)
        builder.start()

    def wait(self, ms: int = 30_000) -> None:
        if self.builder is not None:
            self.builder.wait(ms)

    def stores(self) -> list[Any]:
        engine = self.window.engine
        return [s for s in [self.system] + ([engine.system, engine.market] if engine else [])
                if s is not None]


def _open_system(settings: Any) -> Any:
    """The GUI thread's own system store (migrated); a full disk or a foreign lock is
    waited out, saying so on stderr. Raises ``StorageError`` for a file it cannot use."""
    from app.engine.storage import wait_out_storage
    from db.system import SystemStore

    return wait_out_storage(lambda: SystemStore(settings.system_db_path), settings.data_path,
                            say=lambda m: print(f"WAITING: {m}", file=sys.stderr))


def start_window(settings: Any, *, replay: str = "", run_scheduler: bool = True
                 ) -> Startup | int:
    """The window with its PIN pad, not shown yet (an exit code when the system DB cannot be
    used). The pad is all its first frame waits for (issue 15): its three settings are read
    with plain sqlite3 (``EarlySettings``); sqlite-utils, the migrations, the rest of the
    window's modules and pages open right after that frame (``finish``), then the engine is
    built on its thread. A system DB that cannot be read that way (not a database, locked by
    another process) takes the full path first, as before: the store is opened before any
    window, which says what is wrong or waits the lock out."""
    import sqlite3

    from app.ui.early_lock import EarlySettings
    from app.ui.window import MainWindow

    try:
        early = EarlySettings.read(settings.system_db_path)
    except (sqlite3.Error, OSError) as e:
        logger.info("system DB not read early (%s): opening it before the window", e)
        early = None
    if early is None:
        from db.connection import StorageError

        try:
            system = _open_system(settings)
        except StorageError as e:
            print(f"autotrader: {e}", file=sys.stderr)
            return 2
        settings = apply_stored_settings(settings, system)
        window = MainWindow(settings, system, replay=replay, run_scheduler=run_scheduler)
        startup = Startup(settings, window, system)
        start_after_first_frame(window, startup.start_engine)
        return startup

    window = MainWindow(settings, early, replay=replay, run_scheduler=run_scheduler,
                        lock_only=True)
    startup = Startup(settings, window)

    def finish() -> None:
        from db.connection import StorageError

        if window.closed:
            return
        try:
            system = _open_system(settings)
        except (StorageError, RuntimeError) as e:  # RuntimeError: a schema too new
            print(f"autotrader: {e}", file=sys.stderr)
            logger.error("the system DB cannot be used: %s", e)
            startup.code = 2
            window.close()
            return
        startup.system = system
        early.attach(system)  # the pad's PinGuard reads and writes the store from now on
        startup.settings = apply_stored_settings(settings, system)
        # The engine's thread first (the store is migrated: it only opens it), then the rest
        # of the window beside it; the engine's result is handled once that is done (a
        # queued signal to this thread), as is anything typed meanwhile.
        startup.start_engine()
        window.finish(system, startup.settings)

    start_after_first_frame(window, finish)
    return startup


def make_application() -> Any:
    """The QApplication (the running one if there is one), as the window wants it: Qt's
    messages in our log, PySide's import hook without its source cache."""
    os.environ.setdefault("QT_QUICK_CONTROLS_STYLE", "Basic")
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from app.ui.pyside_source_scan import install as no_source_cache

    no_source_cache()  # ~40 MB less for the kiosk: before the engine's imports
    qInstallMessageHandler(_qt_message_handler)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("AutoTrader")
    return app


def run_gui(settings: Any, kiosk: bool = False, minutes: float | None = None,
            replay: str = "") -> int:
    """Run the window until it is closed (or ``minutes`` of engine-clock time); exit code.
    ``replay``: the stored day ``run --replay`` plays again (the header says so)."""
    from PySide6.QtCore import QTimer

    app = make_application()
    startup = start_window(settings, replay=replay)
    if isinstance(startup, int):
        return startup
    window = startup.window
    # Months unattended: freed C-heap pages go back to the system every minute (glibc). Its
    # import looks for the C library (ctypes.util, ~25 ms): after the first frame too.
    start_after_first_frame(window, _start_heap_trimmer)
    ready_file = os.environ.get("AUTOTRADER_READY_FILE")
    if ready_file:  # the kiosk unit: pi-upgrade.sh waits for this marker (app/ops/kioskready)
        from app.ops.kioskready import write_ready

        start_after_first_frame(window, lambda: write_ready(ready_file), fallback_ms=None)
    platform = app.platformName()
    show_window(window, app.primaryScreen(), kiosk or platform in FULLSCREEN_PLATFORMS)
    logger.info("window shown on the %s platform%s", platform, " (fullscreen)" if kiosk else "")

    # Ctrl+C / SIGTERM close the window like the user would: the scheduler finishes its tick.
    def on_signal(signum: int, _frame: Any) -> None:
        logger.info("signal %d: closing the window", signum)
        QTimer.singleShot(0, window.close)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, on_signal)
        except ValueError:
            pass
    # Python only sees signals between bytecodes: wake it up now and then.
    heartbeat = QTimer(window)
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(250)

    if minutes is not None:
        deadline: dict[str, Any] = {}

        def check_deadline() -> None:
            engine = window.engine
            if engine is None:
                return
            if "t" not in deadline:
                deadline["t"] = engine.clock.now() + timedelta(minutes=minutes)
            if engine.clock.now() >= deadline["t"]:
                logger.info("--minutes %g reached: closing", minutes)
                window.close()

        stopper = QTimer(window)
        stopper.timeout.connect(check_deadline)
        stopper.start(500)

    code = app.exec()
    startup.wait(30_000)
    window.shutdown()
    for store in startup.stores():
        try:
            store.close()
        except Exception:  # noqa: BLE001
            pass
    return int(startup.code if startup.code is not None else code)

