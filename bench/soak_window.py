"""The paper soak with the app's window up: offscreen, unlocked, on the dashboard.

    .venv/bin/python bench/soak_window.py [--days 5] [--kills 10] [--algos 20] [--tickers 15]
        [--start 2024-03-04] [--screen 1680x1050]

Everything of ``bench/soak_paper.py`` (read its docstring): the loopback emulator and its
driver in the parent, the fault plan, the SIGKILLs and restarts, the end checks
(``check_paper``); the child is the app as ``app/ui/app.py`` starts it: ``run_gui`` builds the
QApplication (``QT_QPA_PLATFORM=offscreen``, a screen of ``--screen`` pixels), the
``MainWindow`` (the PIN pad first; after its first frame the rest: the QML pages, Detail with
its pyqtgraph chart, and the ``EngineBuilder`` thread that builds the engine), the engine
worker thread, the control socket, the operations (snapshots, retention), the heap trimmer,
Qt's event loop in the main thread. Two things differ from the app, both through the seams the app already has:

- the engine the builder builds is the soak's paper stack: ``build_engine`` of
  ``app.engine.runner`` runs as in the app (free-disk check, the data folder's instance
  lock, the plugin memory limit, the stale-order age), its ``_build`` is replaced in the
  child by one building what soak_paper's child builds: a manual clock, the broker's and the
  stream's timeouts scaled to a run where a minute lasts a fraction of a second, the soak's
  plugins;
- the "scheduler" the window starts in its ``SchedulerThread`` (once the engine has started,
  as the app's) is the soak's minute loop: the clock moved minute by minute, the minute's
  bars waited for, ``engine.run_tick``, the stats records, as in soak_paper's child. When it
  is done it closes the window, and ``run_gui`` shuts down as on a user's close.

The PIN is typed on the lock screen's pad (set up in the first life, unlocked in the
others), the idle lock is off (``ui.idle_lock_seconds = 0``), so the dashboard is on screen
for the whole life. On a wide screen (the window at least 1600x800; under offscreen it is
4 px smaller than the screen) Detail, with its live pyqtgraph chart of the first card's
ticker, is docked beside the cards; on a smaller one (the Pi's 800x480) only the cards show.

The end report adds to soak_paper's: the page on screen and the cards counted at each stats
record of the last life, the chart's points, the OS threads (Qt's and the plugin workers'
beside Python's) and the child's RSS after warm-up and at the end of the last stretch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.benchlib as benchlib  # noqa: E402
import bench.soak as soak  # noqa: E402
import bench.soak_paper as sp  # noqa: E402
from bench.soak import START_DAY, last_life, life_logs, minutes_left, proc_stats  # noqa: E402

logger = logging.getLogger("soak_window")

PIN = "246810"
SCREEN = "1680x1050"  # wide (the window >= 1600x800): Detail and its chart beside the cards
START_TIMEOUT = 180.0  # s for the window to be unlocked and the engine started


# --- the child: one life of the app, its window offscreen ----------------------------------
def child(folder: Path, n_algos: int, n_tickers: int) -> None:
    plan = json.loads((folder / "plan.json").read_text())
    minutes = plan["minutes"]
    todo = minutes_left(folder, minutes)
    if not todo:
        return
    opts = json.loads((folder / "window.json").read_text())
    w, h = (int(x) for x in opts["screen"].split("x"))
    screen_file = folder / "screen.json"
    screen_file.write_text(json.dumps({"screens": [
        {"name": "soak", "x": 0, "y": 0, "width": w, "height": h, "logicalDpi": 96,
         "logicalBaseDpi": 96, "dpr": 1}]}))
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={screen_file}"
    os.environ.setdefault("QT_QUICK_CONTROLS_STYLE", "Basic")
    logging.basicConfig(level=logging.WARNING, format="child %(levelname)s %(name)s: %(message)s")

    # As run_gui does before the engine's imports; the QApplication is made here (run_gui
    # takes the instance) so a timer can type the PIN once the event loop runs.
    from PySide6.QtWidgets import QApplication

    from app.ui.pyside_source_scan import install as no_source_cache

    no_source_cache()
    qapp = QApplication.instance() or QApplication(sys.argv[:1])

    import app.engine.runner as runner
    from app.clock import ManualClock
    from app.config import load_settings
    from app.ui.app import run_gui

    clock = ManualClock(datetime.fromtimestamp(todo[0], UTC))
    sp.publish_clock(folder, todo[0] - 58)  # the emulator's "now" while the app starts
    settings = load_settings(path=folder / "absent.toml", env={}, overrides=dict(
        plan["settings"], mode="paper", data_dir=str(folder / "data"),
        **{"ui.idle_lock_seconds": 0}))
    loop = MinuteLoop(folder, todo, set(minutes), plan["tickers"], n_algos, n_tickers, clock)

    def build(settings: Any, _clock: Any) -> tuple[Any, Any]:
        """What the app's ``build_engine`` builds here (on the window's EngineBuilder thread,
        after its disk check, instance lock and plugin memory limit): soak_paper's paper
        stack, and the soak's minute loop as the scheduler."""
        loop.engine = build_paper_engine(folder, settings, loop.clock)
        return loop.engine, loop

    runner._build = build
    from PySide6.QtCore import QTimer

    QTimer.singleShot(0, lambda: loop.found_window(qapp))
    code = run_gui(settings)
    if not loop.done.is_set():
        raise SystemExit(f"the window closed before the soak's minutes were done ({code})")


def build_paper_engine(folder: Path, settings: Any, clock: Any) -> Any:
    """The engine of soak_paper's child: the paper broker, the stream with its gap filler."""
    from app.broker.alpaca import AlpacaBroker
    from app.engine.facade import Engine
    from app.marketdata.backfill import Backfiller
    from app.marketdata.stream import AlpacaStream
    from db.calendar import nyse
    from db.market import MarketStore
    from db.system import SystemStore

    cal = nyse()
    market = MarketStore(settings.market_db_path, cal)
    system = SystemStore(settings.system_db_path)
    broker = AlpacaBroker.from_settings(settings, **sp.BROKER_FAST)
    backfill = Backfiller(settings, market, cal, clock=clock, rate_limit_wait=0.01,
                          rate_limit_min=0.05, error_wait=0.05)
    feed = AlpacaStream(settings, market, cal, clock=clock, backfiller=backfill,
                        **sp.STREAM_FAST)
    return Engine(mode="paper", system=system, market=market, broker=broker, feed=feed,
                  clock=clock, calendar=cal, plugin_timeout=2.0,
                  plugin_dirs=[folder / "plugins"])


class MinuteLoop:
    """The window's scheduler in this soak: ``run(stop)`` on its SchedulerThread, which the
    window starts once the engine has started (reconciled) on its worker thread."""

    def __init__(self, folder: Path, todo: list[int], plan_set: set[int], tickers: list[str],
                 n_algos: int, n_tickers: int, clock: Any) -> None:
        self.folder, self.todo, self.plan_set, self.tickers = folder, todo, plan_set, tickers
        self.n_algos, self.n_tickers, self.clock = n_algos, n_tickers, clock
        self.engine: Any = None
        self.window: Any = None
        self.done = threading.Event()
        self.started_at = time.monotonic()

    # GUI thread ------------------------------------------------------------------------
    def found_window(self, qapp: Any) -> None:
        """Type the PIN on the lock screen's pad, as a user would (set it up in the first
        life); a watchdog ends the life if the soak never starts."""
        from PySide6.QtCore import QTimer

        from app.ui.window import MainWindow

        wins = [w for w in qapp.topLevelWidgets() if isinstance(w, MainWindow)]
        # The window opens with the PIN pad alone; the dashboard is built after the pad's
        # first frame (``MainWindow.finish``): its scene is the one to count frames of.
        if not wins or not getattr(wins[0], "finished", True):
            QTimer.singleShot(50, lambda: self.found_window(qapp))
            return
        win = self.window = wins[0]
        vm = win.lock_vm

        def enter() -> None:
            for d in PIN:
                vm.digit(d)
            vm.submit()

        enter()
        if vm.mode == "setup_repeat":
            enter()
        # Frames the dashboard's scene renders (QQuickWidget: on the GUI thread).
        win.pages["dashboard"].quickWindow().afterRendering.connect(self._frame)
        self._watchdog = QTimer(win)
        self._watchdog.timeout.connect(self._check_started)
        self._watchdog.start(5000)
        self._gui_timer = QTimer(win)
        self._gui_timer.timeout.connect(self._gui_sample)
        self._gui_timer.start(2000)

    gui_stats: dict = {}

    def _gui_sample(self) -> None:
        """Counts only the GUI thread may take (the chart's scene), for the stats records."""
        chart = self.window.pages["detail"].chart if "detail" in self.window.pages else None
        if chart is not None:
            self.gui_stats = {"chart_items": len(chart.scene().items()),
                              "chart_markers": chart.marker_count(),
                              "chart_separators": chart.separator_count()}

    def _check_started(self) -> None:
        if self.minute_started:
            self._watchdog.stop()
        elif time.monotonic() - self.started_at > START_TIMEOUT:
            logger.error("the soak did not start in %.0f s (page %s)", START_TIMEOUT,
                         self.window.current_page() if self.window else None)
            os._exit(3)

    minute_started = False
    frames = 0

    def _frame(self) -> None:
        self.frames += 1

    # the scheduler thread ---------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        try:
            self._run(stop)
        except BaseException:
            logger.exception("the soak's minute loop failed")
            sys.stderr.flush()
            os._exit(4)

    def _run(self, stop: threading.Event) -> None:
        from PySide6.QtCore import QMetaObject, Qt

        from db.calendar import nyse

        engine, clock, folder = self.engine, self.clock, self.folder
        system, market, feed = engine.system, engine.market, engine.feed
        cal = nyse()
        deadline = time.monotonic() + 60
        while self.window is None or self.window.current_page() == "lock":
            if stop.wait(0.05) or time.monotonic() > deadline:
                raise RuntimeError("the window was not unlocked")
        self.minute_started = True
        for i in range(len(system.list_algorithms()), self.n_algos):  # a kill may cut this
            engine.create_algorithm(sp.plugin_for(i, self.n_algos),
                                    self.tickers[i % self.n_tickers], 20_000)
        waited_out = 0
        problems = {"raised": 0, "took longer": 0}
        # SOAK_TRACEMALLOC=1: Python's allocations traced from a third of the life to its
        # end, the largest growths written to tracemalloc.txt (slower; for finding a drift).
        trace: list = [True] if os.environ.get("SOAK_TRACEMALLOC") else []
        if trace:
            import tracemalloc
        with life_logs(folder) as (stats, out):
            for i, ts in enumerate(self.todo):
                if stop.is_set():
                    return
                m = datetime.fromtimestamp(ts, UTC)
                clock.set(m + timedelta(seconds=2))
                sp.publish_clock(folder, ts + 2)
                wanted = {a["ticker"] for a in system.list_algorithms(("running",))}
                if not sp.wait_for_bars(market, sorted(wanted), ts - 60, cal):
                    waited_out += 1
                r = engine.run_tick(m)
                if ts + 60 not in self.plan_set:  # the session's last minute
                    sp.publish_clock(folder, ts + 62)
                    sp.wait_for_bars(market, sorted(wanted), ts, cal)
                for why in r.errors.values():
                    for k in problems:
                        problems[k] += k in why
                out.write(f"{ts}\n")
                if trace and i == len(self.todo) // 3:
                    tracemalloc.start(12)
                    trace.append(tracemalloc.take_snapshot())
                if i % 50 == 0:
                    extra = ({"fd_targets": sp.fd_targets(),
                              "db_threads": sp.db_threads(system, market)} if i == 50 else {})
                    stats.write(json.dumps({"i": i, "day": m.date().isoformat(),
                                            "bars_waited_out": waited_out, **extra,
                                            **sp.db_conns(system, market), **proc_stats(),
                                            **self.window_stats()}) + "\n")
            feed.wait_idle(10.0)
            time.sleep(0.5)  # the last tick's refresh reaches the cards
            if len(trace) > 1:
                diff = tracemalloc.take_snapshot().compare_to(trace[1], "traceback")
                with open(folder / "tracemalloc.txt", "a") as f:
                    f.write(f"total {sum(st.size_diff for st in diff)} B "
                            f"{sum(st.count_diff for st in diff):+d} blocks\n")
                    for st in diff[:25]:
                        f.write(f"{st.size_diff} B {st.count_diff:+d} blocks\n  "
                                + "\n  ".join(st.traceback.format()[-16:]) + "\n")
            stats.write(json.dumps({"end": True, "bars_waited_out": waited_out,
                                    "plugin_problems": problems, "fd_targets": sp.fd_targets(),
                                    "db_threads": sp.db_threads(system, market),
                                    **sp.db_conns(system, market), **proc_stats(),
                                    **self.window_stats()}) + "\n")
        sp.publish_clock(folder, self.todo[-1] + 62)
        self.done.set()
        QMetaObject.invokeMethod(self.window, "close", Qt.ConnectionType.QueuedConnection)

    def window_stats(self) -> dict:
        """What the window shows (read from this thread: plain attributes and counts)."""
        win = self.window
        pages = win.pages
        chart = pages["detail"].chart if "detail" in pages else None
        return {"page": win.current_page(), "cards": win.cards.count(),
                "docked": win.docked, "chart_points": chart.count if chart else -1,
                "chart_draws": chart.draws if chart else -1, "frames": self.frames,
                "os_threads": len(os.listdir("/proc/self/task")),
                "py_blocks": sys.getallocatedblocks(), **heap_stats(), **self.gui_stats}


def heap_stats() -> dict:
    """benchlib's heap split (malloc in use and free, SQLite's, anonymous and file RSS), MB,
    rounded for the stats records."""
    return {k: round(v, 2) for k, v in benchlib.heap_stats().items()}


# --- the parent: soak_paper's run with this script as the child ---------------------------
@dataclass
class WindowResult(sp.PaperResult):
    screen: str = SCREEN
    n_algos: int = 0
    pages_seen: list = field(default_factory=list)  # pages at the last life's records
    cards: tuple = (0, 0)  # cards counted: after warm-up, at the end
    docked: bool = False
    chart_points: tuple = (0, 0)
    chart_draws: tuple = (0, 0)
    frames: tuple = (0, 0)  # frames the dashboard's scene rendered: after warm-up, the end
    os_threads: tuple = (0, 0)
    fds_not_db: tuple = (0, 0)  # fds other than DB files': at minute 50, at the end
    py_blocks: tuple = (0, 0)  # Python's allocated memory blocks: after warm-up, the end
    db_conns_live: tuple = (0, 0)  # DB connections of live threads (each its page cache)
    malloc_used: tuple = (0, 0)  # MB malloc holds in use (glibc mallinfo2): after warm-up, end
    malloc_free: tuple = (0, 0)  # MB free inside malloc's heaps (kept, counted in the RSS)
    chart_items: tuple = (0, 0)  # the chart's scene items (its session lines among them)
    rss_first_mb: int = 0  # the last life's first record (its start), for the warm-up's cost
    rss_per_session: float = 0.0  # MB per 390 ticks after warm-up (least squares), last life

    @property
    def problems(self) -> list[str]:
        p = list(super().problems)
        if set(self.pages_seen) != {"dashboard"}:
            p.append(f"the window left the dashboard: pages {sorted(set(self.pages_seen))}")
        if self.cards[1] != self.n_algos:
            p.append(f"{self.cards[1]} cards on the dashboard at the end, not {self.n_algos}")
        if self.fds_not_db[1] > self.fds_not_db[0] + 2:
            p.append(f"fds other than DB files' grew {self.fds_not_db}")
        if self.os_threads[1] > self.os_threads[0] + 2:
            p.append(f"OS threads grew {self.os_threads}")
        if self.frames[1] <= self.frames[0]:
            p.append(f"the dashboard rendered no frame in the last stretch {self.frames}")
        if self.docked and self.chart_draws[1] <= self.chart_draws[0]:
            p.append(f"the docked chart was not redrawn in the last stretch {self.chart_draws}")
        return p


def run(folder: Path, days: int = 2, kills: int = 3, n_algos: int = 20, n_tickers: int = 15,
        seed: int = 1, final_stretch: float = 0.3, log=print, start: date = START_DAY,
        screen: str = SCREEN) -> WindowResult:
    """soak_paper's run (emulator, driver, faults, kills, checks) with this script's child."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "window.json").write_text(json.dumps({"screen": screen}))
    me = Path(__file__).resolve()
    original = sp.run_lives

    def run_lives(_script: Path, *args: Any, **kwargs: Any) -> None:
        soak.run_lives(me, *args, **kwargs)

    sp.run_lives = run_lives
    try:
        r = sp.run(folder, days, kills, n_algos, n_tickers, seed, final_stretch, log, start)
    finally:
        sp.run_lives = original
    out = WindowResult(**{f.name: getattr(r, f.name) for f in dataclasses.fields(r)})
    out.screen, out.n_algos = screen, n_algos
    return window_figures(folder, out)


def window_figures(folder: Path, out: WindowResult) -> WindowResult:
    """The window's figures of the child's last life (its stats records), into ``out``."""
    stretch = last_life(folder)
    recs = [x for x in stretch if "page" in x]
    if stretch:
        out.rss_first_mb = stretch[0]["rss_mb"]
    if len(stretch) >= 2 and recs:
        warm = stretch[min(len(stretch) - 1, max(1, len(stretch) // 3))]
        end = stretch[-1]
        out.pages_seen = [x["page"] for x in recs]
        out.docked = bool(end.get("docked"))
        for name in ("cards", "chart_points", "chart_draws", "frames", "os_threads",
                     "py_blocks", "malloc_used", "malloc_free", "chart_items"):
            setattr(out, name, (warm.get(name, 0), end.get(name, 0)))
        out.db_conns_live = (warm.get("db_conns", 0), end.get("db_conns", 0))
        after = [x for x in recs[recs.index(warm) if warm in recs else 0:] if "i" in x]
        if len(after) >= 3:
            xs, ys = [x["i"] for x in after], [x["rss_mb"] for x in after]
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            var = sum((x - mx) ** 2 for x in xs)
            if var:
                out.rss_per_session = round(390 * sum(
                    (x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var, 2)
        early = next((x["fd_targets"] for x in stretch if "fd_targets" in x and "i" in x), [])
        out.fds_not_db = (_not_db(early), _not_db(end.get("fd_targets", [])))
    return out


def _not_db(targets: list[str]) -> int:
    return sum(not t.endswith((".db", ".db-wal", ".db-shm", ".db-journal")) for t in targets)


def describe(r: WindowResult) -> str:
    pages = sorted(set(r.pages_seen))
    return "\n".join([
        sp.describe(r).replace("paper soak:", "window soak:", 1).rsplit("\n", 1)[0],
        f"  window: offscreen {r.screen}, pages at the last life's {len(r.pages_seen)} stats "
        f"records {pages}, cards {r.cards[0]} -> {r.cards[1]} (of {r.n_algos}), Detail "
        f"{'docked' if r.docked else 'not docked'}; chart points {r.chart_points[0]} -> "
        f"{r.chart_points[1]}, redraws {r.chart_draws[0]} -> {r.chart_draws[1]}; dashboard "
        f"frames rendered {r.frames[0]} -> {r.frames[1]}",
        f"  child RSS: at its last start {r.rss_first_mb} MB, after warm-up {r.rss_warm_mb} "
        f"MB, at the end {r.rss_end_mb} MB (drift {r.rss_end_mb - r.rss_warm_mb} MB, "
        f"{r.rss_per_session:+g} MB a session after warm-up); OS "
        f"threads {r.os_threads[0]} -> {r.os_threads[1]}; fds other than DB files' (minute 50 "
        f"-> the end) {r.fds_not_db[0]} -> {r.fds_not_db[1]}",
        f"  heap: malloc's bytes in use {r.malloc_used[0]} -> {r.malloc_used[1]} MB, free in its "
        f"heaps {r.malloc_free[0]} -> {r.malloc_free[1]} MB; the chart's scene items "
        f"{r.chart_items[0]} -> {r.chart_items[1]}",
        f"  beside the RSS: Python's allocated blocks {r.py_blocks[0]} -> {r.py_blocks[1]}; DB "
        f"connections of live threads {r.db_conns_live[0]} -> {r.db_conns_live[1]} (each "
        f"with its page cache, up to 2 MB)",
        "  checks: " + ("all passed" if not r.problems else "; ".join(r.problems)),
    ])


def main() -> int:
    def more(ap: argparse.ArgumentParser) -> None:
        ap.add_argument("--start", type=date.fromisoformat, default=START_DAY,
                        help="first session (2024-10-28 with --days 24: the DST change and "
                             "the Nov 29 half day)")
        ap.add_argument("--screen", default=SCREEN,
                        help="the offscreen screen, WxH (default 1680x1050: Detail's chart docked "
                             "beside the cards; 800x480: the Pi's display, the cards only)")

    return soak.soak_main(__doc__, child, lambda folder, a: run(
        folder, a.days, a.kills, a.algos, a.tickers, start=a.start, screen=a.screen),
        describe, days=5, kills=10, prefix="soak-window-", more_args=more)


if __name__ == "__main__":
    sys.exit(main())
