"""How long the operations take on a data folder of a given size.

Builds a market DB of ``--tickers`` x ``--days`` regular-session minute bars (one year of five
tickers is ~490,000 bars) and a system DB with ``--fills`` transactions, then times:
- ``autotrader backup`` (SQLite's online backup API + manifest, folder and .tar.gz);
- ``PRAGMA integrity_check`` (what ``doctor`` runs) against ``quick_check`` (``doctor --quick``);
- checking a backup (``restore --check``: checksums + integrity of the copies).
On a Pi, SD-card I/O makes these several times slower; the daily backup timer runs at night.

Then the operator's commands (issue 13), each beside its floor measured in the same run
(benchlib's BENCH_RESULT lines): a notification queued by an engine thread, ``algo list`` over
the control socket and as a process, a status-page request, the daily summary's chart, and
``export transactions`` of the ``--fills``. ``--skip-operator`` leaves them out.

    .venv/bin/python bench/bench_ops.py [--tickers 5] [--days 252] [--fills 20000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import percentile, report  # noqa: E402

from app.config import Settings, load_settings  # noqa: E402
from app.control.client import ControlClient  # noqa: E402
from app.control.server import start_control  # noqa: E402
from app.control.service import ControlService  # noqa: E402
from app.engine.runner import build_engine  # noqa: E402
from app.ops import tx_export  # noqa: E402
from app.ops.backup import create_backup  # noqa: E402
from app.ops.charts import _figure, day_png  # noqa: E402
from app.ops.dbcheck import inspect_db, migration_sets  # noqa: E402
from app.ops.notify import Notifier  # noqa: E402
from app.ops.performance import take_snapshot  # noqa: E402
from app.ops.restore import check_backup  # noqa: E402
from app.ops.status_page import StatusServer, collect, render  # noqa: E402
from db.calendar import nyse  # noqa: E402
from db.market import MarketStore  # noqa: E402
from db.system import SystemStore  # noqa: E402

T = TypeVar("T")


def build(data: Path, tickers: int, days: int, fills: int) -> int:
    market = MarketStore(data / "market.db", nyse())
    start = 1704205800  # 2024-01-02 14:30 UTC, the open; one 390-minute block a day
    rows = []
    n = 0
    for t in range(tickers):
        sym = f"T{t}"
        for d in range(days):
            base = start + d * 86_400
            rows.extend((sym, base + 60 * m, 100.0, 100.5, 99.5, 100.1, 1000) for m in range(390))
            if len(rows) > 200_000:
                n += market.insert_rows(rows, filter_session=False)
                rows.clear()
    n += market.insert_rows(rows, filter_session=False)
    market.close()
    system = SystemStore(data / "system.db")
    algo = system.add_algorithm("sma_crossover", "T0", 1e6)
    with system.atomic():
        for i in range(fills):
            system.add_transaction(algo, "T0", "buy" if i % 2 == 0 else "sell", 1, 100.0,
                                   "2024-01-02T15:00:00Z", fill_id=f"f{i}")
    system.close()
    return n


def timed(label: str, fn: Callable[[], T]) -> T:
    t0 = time.perf_counter()
    out = fn()
    print(f"  {label:<42} {time.perf_counter() - t0:7.2f} s")
    return out


def operator_bench(tmp: Path, fills: int) -> None:
    """The operator's commands, each beside its floor (the same work done the plainest way)."""
    print("operator (issue 13): CLI over the control channel, notifications, status page, "
          "charts, export")
    _bench_notify()
    _bench_running_app()
    _bench_chart(tmp)
    _bench_export(tmp)


def _bench_notify() -> None:

    # 1. Notifier.send: what an engine thread pays per event (a queue put), vs the bare put
    n = Notifier(["json://127.0.0.1:9/x"], batch_seconds=3600, retries=1)
    q: queue.Queue = queue.Queue(200)
    sends, puts = [], []
    for _ in range(30):
        t0 = time.perf_counter()
        for i in range(150):
            n.send("fill", f"AAPL buy {i}")
        sends.append((time.perf_counter() - t0) / 150 * 1e6)
        while True:  # the bench drains what the worker has not taken
            try:
                n._q.get_nowait()  # noqa: SLF001
            except queue.Empty:
                break
        t0 = time.perf_counter()
        for i in range(150):
            q.put_nowait(("fill", f"AAPL buy {i}"))
        puts.append((time.perf_counter() - t0) / 150 * 1e6)
        while not q.empty():
            q.get_nowait()
    n._apprise.clear()  # noqa: SLF001 - nothing to deliver at close
    n.close(timeout=2)
    report("ops", "notify send (engine thread)", percentile(sends, 50), percentile(puts, 50),
           "us", 5.0, floor_what="queue.put_nowait of a tuple")



def _bench_running_app() -> None:
    # 2. the control channel: `algo list` over the socket vs the same request in-process
    data = Path(tempfile.mkdtemp(prefix="atb", dir="/tmp"))
    settings = load_settings(overrides={"data_dir": str(data), "mode": "demo",
                                        "demo.start_date": "2024-06-04"})
    engine, _ = build_engine(settings)
    engine.start()
    try:
        for i in range(7):  # ten algorithms with the three of the demo
            engine.create_algorithm("sma_crossover", ["AAPL", "MSFT", "NVDA"][i % 3], 1000.0,
                                    name=f"bench {i}")
        server = start_control(engine, settings.data_path)
        assert server is not None
        svc = ControlService(engine)
        answer = (json.dumps(svc.handle({"cmd": "list"}), default=str) + "\n").encode()
        a, b = socket.socketpair()

        def echo() -> None:  # the plainest channel: a thread answering the same bytes
            f = b.makefile("rwb")
            while f.readline():
                f.write(answer)
                f.flush()

        threading.Thread(target=echo, daemon=True).start()
        fa = a.makefile("rwb")
        direct, over, bare = [], [], []
        with ControlClient.connect(settings.data_path) as client:  # type: ignore[union-attr]
            for _ in range(200):
                direct.append(_timed_ms(lambda: svc.handle({"cmd": "list"})))
                over.append(_timed_ms(lambda: client.request({"cmd": "list"})))
                t0 = time.perf_counter()
                fa.write(b'{"cmd": "list"}\n')
                fa.flush()
                json.loads(fa.readline())
                bare.append((time.perf_counter() - t0) * 1e3)
        a.close()
        b.close()
        floor_ms = percentile(direct, 50) + percentile(bare, 50)
        report("ops", "algo list over the control socket (10 algos)", percentile(over, 50),
               floor_ms, "ms", 3.0,
               floor_what="the request in-process + a bare socket echo of its answer")

        # 3. what the SSH user waits for: `autotrader algo list` as a process
        env = {**os.environ, "AUTOTRADER_DATA_DIR": str(data), "AUTOTRADER_MODE": "demo"}
        root = Path(__file__).resolve().parents[1]

        def proc(*args: str) -> float:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, *args], cwd=root, env=env, check=True,
                           capture_output=True)
            return time.perf_counter() - t0

        cli = [proc("main.py", "algo", "list") for _ in range(5)]
        floor = [proc("-c", "import app.config, json, socket") for _ in range(5)]
        report("ops", "autotrader algo list (process, app running)", min(cli) * 1e3,
               min(floor) * 1e3, "ms", 4.0, floor_what="python start + import app.config")

        # 4. the status page: one phone request vs a static page of the same size
        for day in ("2024-05-29", "2024-05-30", "2024-05-31", "2024-06-03"):
            take_snapshot(engine, date.fromisoformat(day))
        page = StatusServer(engine, settings, bind="127.0.0.1", port=0).start()
        body = urllib.request.urlopen(f"http://127.0.0.1:{page.port}/").read()

        class Static(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        static = ThreadingHTTPServer(("127.0.0.1", 0), Static)
        threading.Thread(target=static.serve_forever, daemon=True).start()

        def get(url: str) -> float:
            t0 = time.perf_counter()
            urllib.request.urlopen(url).read()
            return (time.perf_counter() - t0) * 1e3

        got = [get(f"http://127.0.0.1:{page.port}/") for _ in range(100)]
        flo = [get(f"http://127.0.0.1:{static.server_address[1]}/") for _ in range(100)]
        work = [_timed_ms(lambda: render(collect(engine, page.account(), [])))
                for _ in range(100)]
        static.shutdown()
        page.close()
        report("ops", f"status page GET ({len(body) // 1024} KB HTML)", percentile(got, 50),
               percentile(flo, 50) + percentile(work, 50), "ms", 3.0,
               floor_what="a static page of the same size + gathering and rendering it")
    finally:
        engine.close()
        engine.system.close()
        engine.market.close()
        shutil.rmtree(data, ignore_errors=True)



def _bench_chart(tmp: Path) -> None:
    # 5. the daily summary's chart vs an empty figure of the same size saved as PNG
    def empty() -> None:
        fig = _figure(640, 320)
        fig.add_subplot(1, 2, 1)
        fig.add_subplot(1, 2, 2)
        fig.savefig(io.BytesIO(), format="png")

    empty()  # matplotlib's first use (fonts) is not the floor's
    days = [(f"2024-06-{d:02d}", 100_000.0 + 50 * d) for d in range(3, 28)]
    chart = [_timed_ms(lambda: day_png(tmp / "d.png", "t", {f"A{i}": i - 4.0 for i in range(8)},
                                       days)) for _ in range(5)]
    base = [_timed_ms(empty) for _ in range(5)]
    report("ops", "daily summary chart (PNG, 8 algos, 25 days)", min(chart), min(base), "ms",
           3.0, floor_what="an empty two-panel PNG")



def _bench_export(tmp: Path) -> None:
    # 6. export transactions of a year vs reading the rows
    system = SystemStore(tmp / "data" / "system.db")
    try:
        exp = [_timed_ms(lambda: tx_export.year_rows(system, 2024)) for _ in range(3)]
        raw = [_timed_ms(lambda: system.all_transactions()) for _ in range(3)]
        rows = tx_export.year_rows(system, 2024)
        report("ops", f"export transactions ({len(rows):,} fills)", min(exp), min(raw), "ms",
               5.0, floor_what="SELECT * FROM transactions")
        json.dumps(rows[:1])
    finally:
        system.close()


def _timed_ms(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickers", type=int, default=5)
    ap.add_argument("--days", type=int, default=252)
    ap.add_argument("--fills", type=int, default=20_000)
    ap.add_argument("--skip-operator", action="store_true",
                    help="only the backup/check timings, not the operator's commands")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        bars = timed("building the DBs", lambda: build(data, a.tickers, a.days, a.fills))
        size = sum(p.stat().st_size for p in data.glob("*.db*")) / 1e6
        print(f"  data folder: {bars:,} bars, {a.fills:,} transactions, {size:.0f} MB")
        s = Settings(data_dir=str(data))
        sets = migration_sets()
        timed("integrity_check of market.db (doctor)",
              lambda: inspect_db(data / "market.db", sets["market.db"]))
        timed("quick_check of market.db (doctor --quick)",
              lambda: inspect_db(data / "market.db", sets["market.db"], quick=True))
        res = timed("backup to a folder", lambda: create_backup(s, Path(tmp) / "bk"))
        timed("backup to a .tar.gz", lambda: create_backup(s, Path(tmp) / "bk", archive=True))
        timed("restore --check of the folder backup", lambda: check_backup(res.path))
        if not a.skip_operator:
            operator_bench(Path(tmp), a.fills)


if __name__ == "__main__":
    main()
