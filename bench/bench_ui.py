"""UI benchmarks (offscreen): start to first frame, and the live chart's CPU cost.

1. Start to first frame: a fresh process opens the window as ``run_gui`` does
   (``app.ui.app.start_window``: the PIN pad first; the rest of the window and the demo
   engine after its first frame) on an empty data folder, and reports when the lock screen's
   first frame has rendered (process start measured by the parent just before it launches
   the child), when the rest of the window was built and when the engine was ready.
2. Whole app on the dashboard: the demo at 60x (a tick and three bars a second), 20 s.
3. Live chart: 100,000 bars (open/high/low/close/volume: the price line, two SMAs and the
   volume pane; then again as candles), one new bar every 100 ms (10 updates a second) for
   10 s; CPU time of this process / wall time = share of one core.

Floors, measured in the same run (issue 15): start to first frame against a bare
QQuickWidget window with one Text (``FLOOR_CHILD``, a fresh process the same way; five starts
of each, alternating, medians), target <= 1.5x. The live chart against two floors, measured
interleaved with it (two rounds, the second reversed, medians): the same content
(``SameContentFloor``: pyqtgraph alone drawing the same panes, lines, pens, axes, data, view
and update rate with its plain API, ``setData`` on every bar), target <= 1.2x CPU, the one
that measures our code; and, printed beside it for the record, the bare line
(``FloorChart``: one PlotWidget, one 1 px curve of the closes), which the chart's extra
panes and lines cost 2-3x of by themselves.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_ui.py [--first-frame-only | --chart-only]
"""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.benchlib import report  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

CHILD = r"""
import os, sys, time
t0 = float(os.environ["BENCH_T0"])
from PySide6.QtCore import QTimer
from app.ui.app import make_application, start_after_first_frame, start_window
app = make_application()   # as run_gui makes it
t_qt = time.time()
from app.config import load_settings
s = load_settings(overrides={"data_dir": os.environ["BENCH_DATA"]})
# As run_gui does: the PIN pad alone, then (after its first frame) the rest of the window and
# the engine, built on a thread beside the pad.
startup = start_window(s, run_scheduler=False)
w = startup.window
w.resize(800, 480)
done = {}
def frame():
    done.setdefault("frame", time.time())
def finished():
    done["finished"] = time.time()
def built(engine, scheduler):
    done["engine"] = time.time()
    QTimer.singleShot(0, app.quit)
startup.on_built.append(built)
QTimer.singleShot(120_000, app.quit)
w.pages["lock"].quickWindow().afterRendering.connect(frame)
w.show()
start_after_first_frame(w, finished)   # after start_window's own: the window is whole
app.exec()
startup.wait()
print(f"{(t_qt - t0) * 1000:.0f} {(done['engine'] - t0) * 1000:.0f} {(done['frame'] - t0) * 1000:.0f}"
      f" {(done['finished'] - t0) * 1000:.0f}")
w.shutdown()
for store in startup.stores():
    store.close()
"""


DASHBOARD = r"""
import os, sys, time
from PySide6.QtWidgets import QApplication
from PySide6.QtCore import QTimer
app = QApplication(sys.argv[:1])
from app.config import load_settings
from app.engine.runner import build_engine
from app.ui.window import MainWindow
s = load_settings(overrides={"data_dir": os.environ["BENCH_DATA"], "demo.speed": 60.0})
engine, scheduler = build_engine(s)
w = MainWindow(s, engine.system)
w.guard.set_pin("246813")
w.attach_engine(engine, scheduler)
w.resize(800, 480)
w.show()
w.lock_vm.start("unlock")
for d in "246813":
    w.lock_vm.digit(d)
w.lock_vm.submit()
out = {}
def start():
    out["cpu"], out["wall"], out["ticks"] = time.process_time(), time.monotonic(), scheduler.ticks
def stop():
    cpu = time.process_time() - out["cpu"]
    wall = time.monotonic() - out["wall"]
    print(f"{100 * cpu / wall:.1f} {scheduler.ticks - out['ticks']} {w.cards.count()} "
          f"{w.current_page()}")
    w.close()
QTimer.singleShot(3000, start)     # after start-up and the first ticks
QTimer.singleShot(23000, stop)
app.exec()
w.shutdown()
"""


FLOOR_CHILD = r"""
import os, sys, time
t0 = float(os.environ["BENCH_T0"])
from PySide6.QtCore import QTimer, QUrl
from PySide6.QtQuickWidgets import QQuickWidget
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
t_qt = time.time()
w = QQuickWidget()
w.setResizeMode(QQuickWidget.SizeRootObjectToView)
path = os.path.join(os.environ["BENCH_DATA"], "floor.qml")
with open(path, "w") as f:
    f.write('import QtQuick\nRectangle { color: "black"; Text { text: "AutoTrader"; color: "white" } }\n')
w.setSource(QUrl.fromLocalFile(path))
w.resize(800, 480)
done = {}
def frame():
    if "frame" not in done:
        done["frame"] = time.time()
        QTimer.singleShot(0, app.quit)
w.quickWindow().afterRendering.connect(frame)
w.show()
app.exec()
print(f"{(t_qt - t0) * 1000:.0f} {(done['frame'] - t0) * 1000:.0f}")
"""


# Bytecode as installed: pip compiles it when it installs the app (packaging/pi-upgrade.sh),
# while this environment may say PYTHONDONTWRITEBYTECODE, which made every start of the app
# (not the floor: it has no modules of its own) compile ~30 modules from source (~0.1-0.2 s).
# Both children write and read it under one prefix per run (the checkout stays clean), each
# started once untimed first (``warm_up``).
_PYCACHE = tempfile.mkdtemp(prefix="bench-ui-pyc-")
atexit.register(shutil.rmtree, _PYCACHE, True)


def _child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONPYCACHEPREFIX=_PYCACHE, **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def floor_first_frame() -> tuple[float, float]:
    """A bare QQuickWidget with one Text, started the same way: (Qt up, first frame) ms."""
    with tempfile.TemporaryDirectory() as d:
        env = _child_env(BENCH_T0=repr(time.time()), BENCH_DATA=d)
        out = subprocess.run([sys.executable, "-c", FLOOR_CHILD], env=env, capture_output=True,
                             text=True, timeout=120, cwd=ROOT)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-2000:])
        qt, frame = (float(x) for x in out.stdout.split()[-2:])
        return qt, frame


def dashboard_cpu() -> tuple[float, int, int, str]:
    """The whole app on the dashboard: demo at 60x (a tick a second), three algorithms."""
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, BENCH_DATA=d, PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, "-c", DASHBOARD], env=env, capture_output=True,
                             text=True, timeout=120, cwd=ROOT)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-2000:])
        cpu, ticks, cards, page = out.stdout.split()[-4:]
        return float(cpu), int(ticks), int(cards), page


def start_to_first_frame() -> tuple[float, float, float, float]:
    with tempfile.TemporaryDirectory() as d:
        env = _child_env(BENCH_T0=repr(time.time()), BENCH_DATA=d)
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                             text=True, timeout=120, cwd=ROOT)
        if out.returncode != 0:
            errs = [ln for ln in out.stderr.splitlines() if "qml:" not in ln.lower()]
            raise SystemExit("\n".join(errs[-30:]))
        qt, engine, frame, whole = (float(x) for x in out.stdout.split()[-4:])
        return qt, engine, frame, whole


class FloorChart:
    """pyqtgraph alone: one PlotWidget, one curve of the same array, setData per update."""

    def __init__(self) -> None:
        import numpy as np
        import pyqtgraph as pg

        self.np = np
        self.widget = pg.PlotWidget()
        self.curve = self.widget.plot()
        self.curve.setClipToView(True)
        self.curve.setDownsampling(auto=True, method="peak")
        self.x = np.empty(0)
        self.y = np.empty(0)
        self.draws = 0

    def set_series(self, ts, close) -> None:
        self.x = self.np.asarray(ts, dtype=float)
        self.y = self.np.asarray(close, dtype=float)
        self.curve.setData(self.x, self.y, skipFiniteCheck=True)

    def append(self, ts: int, close: float) -> None:
        self.x = self.np.append(self.x, float(ts))
        self.y = self.np.append(self.y, close)
        self.curve.setData(self.x, self.y, skipFiniteCheck=True)
        self.draws += 1

    @property
    def count(self) -> int:
        return len(self.x)

    def __getattr__(self, name: str):
        return getattr(self.widget, name)


class SameContentFloor:
    """pyqtgraph alone drawing what the chart draws, with its plain API: a legend row, a price
    pane (2 px price line, two 2 px SMA lines, a last-price line with its tag, opaque grid,
    price axis on the right) over a volume pane (volume bars, x grid, a date axis at the
    bottom, an empty right axis keeping the panes aligned), x linked; each bar goes in with
    ``setData`` on every curve (clip-to-view and peak downsampling: pyqtgraph's own way to
    show 100,000 points), the view follows the newest bar with the chart's width and right
    margin, and the panes' heights auto-range over the bars in view.

    Differences, so the ratio says what they cost: the volume bars are a filled step curve
    (pyqtgraph has no clipped bar item; ``BarGraphItem`` draws every one of 100,000 bars, which
    would make the floor slower, not fairer) and there is no candlestick item in pyqtgraph,
    so the candles row is compared with this same line floor. The SMAs' newest values are
    computed per bar as the chart does (the mean of the last ``w`` closes). The bench data
    has no session gap, so neither draws a separator."""

    def __init__(self) -> None:
        import numpy as np
        import pyqtgraph as pg

        from app.ui.chart import GRID_COLOR, INDICATOR_COLORS, PRICE_PEN, VOLUME_UP

        self.np = np
        self.widget = pg.GraphicsLayoutWidget()
        self.widget.setBackground("w")
        self.legend = pg.LabelItem(justify="left")
        self.legend.setText("price&nbsp;&nbsp; SMA 20&nbsp;&nbsp; SMA 50<br>hold a finger on the "
                            "chart for its time, open/high/low/close and values",
                            color="#0d1117", size="10pt")
        self.widget.addItem(self.legend, row=0, col=0)
        self.plot = self.widget.addPlot(row=1, col=0)
        self.vol = self.widget.addPlot(row=2, col=0, axisItems={"bottom": pg.DateAxisItem()})
        self.widget.ci.layout.setRowStretchFactor(1, 4)
        self.widget.ci.layout.setRowStretchFactor(2, 1)
        self.vol.setXLink(self.plot)
        for plot in (self.plot, self.vol):
            plot.showAxis("right")
            plot.hideAxis("left")
            plot.getAxis("right").setWidth(64)
        self.plot.hideAxis("bottom")
        self.plot.showGrid(y=True)
        self.vol.showGrid(x=True)
        for ax in (self.plot.getAxis("right"), self.vol.getAxis("bottom")):
            ax.setTickPen(pg.mkPen(GRID_COLOR))
            ax.setStyle(tickAlpha=255)
        self.vol.getAxis("right").setStyle(showValues=False)
        self.curve = self.plot.plot(pen=pg.mkPen(**PRICE_PEN))
        self.smas = [self.plot.plot(pen=pg.mkPen(c, width=2)) for c in INDICATOR_COLORS[:2]]
        self.volume = self.vol.plot(pen=None, fillLevel=0, brush=VOLUME_UP)
        self.tag = pg.InfiniteLine(angle=0, pen=pg.mkPen("#0a2f6b"), label="{value:.2f}",
                                   labelOpts={"position": 0.98, "fill": "#0a2f6b",
                                              "color": "#ffffff"})
        self.plot.addItem(self.tag, ignoreBounds=True)
        for c in [self.curve, self.volume, *self.smas]:
            c.setClipToView(True)
            c.setDownsampling(auto=True, method="peak")
        for plot in (self.plot, self.vol):
            plot.getViewBox().setAutoVisible(y=True)
        self.windows = (20, 50)
        self.draws = 0

    def set_series(self, ts, close, ohlv) -> None:
        np = self.np
        n = len(ts)
        # Room for the bars to come, handed to pyqtgraph as views (no copy of the series per
        # bar: that would be the floor's own waste, not pyqtgraph's cost).
        self.x, self.y, self.v = (np.zeros(n + 100_000) for _ in range(3))
        self.x[:n], self.y[:n], self.v[:n] = ts, close, ohlv[:, 3]
        self.ma = []
        for w in self.windows:
            m = np.full(len(self.x), np.nan)
            c = np.cumsum(np.insert(self.y[:n], 0, 0.0))
            m[w - 1:n] = (c[w:] - c[:-w]) / w
            self.ma.append(m)
        self.n = n
        self._show()

    def _show(self) -> None:
        n = self.n
        x = self.x[:n]
        self.curve.setData(x, self.y[:n], skipFiniteCheck=True)
        for c, m in zip(self.smas, self.ma, strict=True):
            c.setData(x, m[:n], connect="finite")
        self.volume.setData(x, self.v[:n], skipFiniteCheck=True)
        self.tag.setValue(float(self.y[n - 1]))
        width = 392 * 60.0  # the chart's default: one session and two bars, 12% margin
        self.plot.setXRange(x[-1] - width, x[-1] + 0.12 * width, padding=0)

    def append(self, ts: int, close: float, o: float, h: float, lo: float, v: float) -> None:
        n = self.n
        self.x[n], self.y[n], self.v[n] = ts, close, v
        for m, w in zip(self.ma, self.windows, strict=True):
            m[n] = self.y[n + 1 - w:n + 1].mean()
        self.n = n + 1
        self._show()
        self.draws += 1

    def set_candles(self, on: bool) -> None:
        pass

    @property
    def count(self) -> int:
        return self.n

    def __getattr__(self, name: str):
        return getattr(self.widget, name)


def floor_chart(points: int = 100_000, hz: float = 10.0, seconds: float = 10.0) -> dict:
    return live_chart_cpu(points, hz, seconds, factory=FloorChart)


def same_content_floor(points: int = 100_000, hz: float = 10.0, seconds: float = 10.0) -> dict:
    return live_chart_cpu(points, hz, seconds, factory=SameContentFloor)


def live_chart_cpu(points: int = 100_000, hz: float = 10.0, seconds: float = 10.0,
                   factory=None, candles: bool = False) -> dict:
    import numpy as np
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.ui.chart import PriceChart

    app = QApplication.instance() or QApplication(sys.argv[:1])
    chart = factory() if factory else PriceChart(sma_windows=(20, 50))
    chart.resize(800, 400)
    chart.show()
    ts = 1_709_649_000 + 60 * np.arange(points, dtype=np.int64)
    close = 100 + np.cumsum(np.random.default_rng(1).normal(0, 0.05, points))
    bare = factory is FloorChart
    if bare:
        chart.set_series(ts, close)
    else:  # whole bars: open/high/low and volume (the volume pane)
        opens = np.concatenate(([close[0]], close[:-1]))
        vols = np.random.default_rng(3).integers(100, 5000, points).astype(float)
        chart.set_series(ts, close, np.column_stack([opens, np.maximum(opens, close) + 0.02,
                                                     np.minimum(opens, close) - 0.02, vols]))
        chart.set_candles(candles)
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:  # settle: first draw and auto-range
        app.processEvents()
        time.sleep(0.01)
    state = {"i": 0}
    rng = np.random.default_rng(2)

    def add() -> None:
        state["i"] += 1
        c = float(close[-1] + rng.normal(0, 0.05))
        if bare:
            chart.append(int(ts[-1]) + 60 * state["i"], c)
        else:
            chart.append(int(ts[-1]) + 60 * state["i"], c, c - 0.01, c + 0.03, c - 0.03,
                         float(rng.integers(100, 5000)))
        chart.repaint()  # offscreen nothing asks for paints: force one per update, like a screen

    timer = QTimer()
    timer.timeout.connect(add)
    draws0 = chart.draws
    cpu0, wall0 = time.process_time(), time.monotonic()
    timer.start(int(1000 / hz))
    QTimer.singleShot(int(seconds * 1000), app.quit)
    app.exec()
    timer.stop()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    chart.close()
    chart.deleteLater()  # its timers stop: the next measurement runs alone
    app.processEvents()
    return {"points": chart.count, "updates": state["i"], "draws": chart.draws - draws0,
            "wall_s": wall, "cpu_pct": 100.0 * cpu / wall}


def chart_rows() -> None:
    """The live chart as a line and as candles beside both floors, interleaved: two rounds,
    the second in the reverse order, medians of each (the machine's load drifts within a
    minute; back-to-back runs of one kind would take the drift as a difference)."""
    runs: dict[str, list[dict]] = {"line": [], "candles": [], "same": [], "bare": []}
    kinds = {"line": live_chart_cpu, "candles": lambda: live_chart_cpu(candles=True),
             "same": same_content_floor, "bare": floor_chart}
    order = ["line", "same", "candles", "bare"]
    for rnd in range(2):
        for k in (order if rnd == 0 else order[::-1]):
            runs[k].append(kinds[k]())
    cpu = {k: statistics.median(x["cpu_pct"] for x in v) for k, v in runs.items()}
    for k, v in runs.items():
        print(f"  {k}: CPU {[round(x['cpu_pct'], 1) for x in v]} % of one core, "
              f"{v[-1]['points']:,} points, {v[-1]['updates']} updates, "
              f"{v[-1]['draws']} redraws (last run)")
    print(f"live chart (line, 2 SMAs, volume pane): CPU {cpu['line']:.1f}% of one core; "
          f"candles: {cpu['candles']:.1f}%")
    print(f"  floor, same content: pyqtgraph alone drawing the same panes, lines, axes and "
          f"view (setData per bar): {cpu['same']:.1f}%")
    print(f"  floor, bare line: one PlotWidget, one 1 px curve: {cpu['bare']:.1f}%")
    same = "pyqtgraph alone, same panes, lines and view"
    report("ui", "live chart 100k points at 10 Hz, CPU", cpu["line"], cpu["same"],
           "% core", 1.2, "lower", same)
    report("ui", "live chart 100k candles + volume at 10 Hz, CPU", cpu["candles"], cpu["same"],
           "% core", 1.2, "lower", same + " (price as a line)")
    bare = "bare line: one PlotWidget, one 1 px curve"
    report("ui", "live chart 100k points at 10 Hz, CPU, vs bare line", cpu["line"],
           cpu["bare"], "% core", None, "lower", bare)
    report("ui", "live chart 100k candles at 10 Hz, CPU, vs bare line", cpu["candles"],
           cpu["bare"], "% core", None, "lower", bare)


def main() -> int:
    first_only = "--first-frame-only" in sys.argv[1:]
    if "--chart-only" in sys.argv[1:]:
        chart_rows()
        return 0
    # Five starts of each, alternating (floor, app, app, floor, ...), medians: one process
    # start on a shared machine swings with whatever else starts at that moment (three were
    # not enough to keep the ratio's median from following one slow start).
    floors, apps = [], []
    floor_first_frame(), start_to_first_frame()  # warm_up: bytecode written, not timed
    for i in range(5):
        order = (floor_first_frame, start_to_first_frame)
        for f in (order if i % 2 == 0 else order[::-1]):
            (floors if f is floor_first_frame else apps).append(f())
    fqt, fframe = (statistics.median(x[i] for x in floors) for i in range(2))
    qt, engine, frame, whole = (statistics.median(x[i] for x in apps) for i in range(4))
    print(f"  first frames (ms), app: {[round(x[2]) for x in apps]}, floor: "
          f"{[round(x[1]) for x in floors]}")
    print(f"start to first frame: {frame:.0f} ms (Qt up at {qt:.0f} ms; the rest of the window "
          f"built after it, at {whole:.0f} ms; the demo engine, built beside the PIN pad on a "
          f"thread, ready at {engine:.0f} ms; empty data folder)")
    print(f"  floor: bare QQuickWidget with one Text: first frame {fframe:.0f} ms "
          f"(Qt up at {fqt:.0f} ms)")
    report("ui", "start to first frame", frame, fframe, "ms", 1.5, "lower",
           "bare QQuickWidget + one Text")
    if first_only:
        return 0
    cpu, ticks, cards, page = dashboard_cpu()
    print(f"whole app on the {page}: {cpu:.1f}% of one core over 20 s (demo 60x: {ticks} ticks, "
          f"{cards} cards updating)")
    chart_rows()
    return 0


if __name__ == "__main__":
    sys.exit(main())
