"""Benchmark: Alpaca stream ingest and one year of backfill, against the loopback emulator.

    .venv/bin/python -m bench.bench_stream [--bars 200000] [--batch 1000]

1. Stream ingest: the emulator pushes pre-encoded JSON frames of minute bars (regular-session
   minutes of 10 tickers) through a real websocket; AlpacaStream (websocket-client) parses,
   stores in a real market DB file and hands each bar to a listener. Target >= 20,000 bars/s.
2. Backfill: one year of minute bars for one ticker through alpaca-py's paging (extended
   hours served, regular session kept), reported in seconds and bars/s.

Floors, measured in the same run (issue 15): ingest against parse + store of the same JSON
frames without the websocket (``floor_ingest``: json.loads, tuples, one plain sqlite3
executemany per frame into the same schema), target >= 0.7x; backfill against the emulator's
pages fetched with a plain HTTP client (``floor_backfill``: urllib + json), target >= 0.8x.

The emulator runs in a process of its own (bench/emulator_process.py): in this one it shared
the GIL with the app, and the app's figure counted the emulator's work (0.25-0.6x the floors).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import sqlite3
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.clock import ManualClock  # noqa: E402
from app.config import load_settings  # noqa: E402
from app.marketdata.backfill import Backfiller  # noqa: E402
from app.marketdata.stream import AlpacaStream  # noqa: E402
from bench.benchlib import report  # noqa: E402
from bench.emulator_process import EmulatorProcess  # noqa: E402
from db.calendar import nyse  # noqa: E402
from db.market import MarketStore  # noqa: E402
from tests.fakes.bars import bar_values  # noqa: E402

NOW = datetime(2025, 1, 6, 21, 0, tzinfo=UTC)
TICKERS = ["AAPL", "MSFT", "NVDA", "SPY", "GE", "AMD", "TSLA", "META", "AMZN", "GOOG"]


def wait(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.002)
    return cond()


def frames_for(n_bars: int, batch: int, calendar) -> list[bytes]:
    """JSON frames of regular-session bars, newest sessions first, round-robin over tickers."""
    per_ticker = n_bars // len(TICKERS) + 1
    minutes: list[int] = []
    for s in calendar.sessions_before(NOW, 400):
        minutes.extend(int(m.timestamp()) for m in s.minutes())
    minutes = minutes[-per_ticker:]
    msgs = []
    for ts in minutes:
        t = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for sym in TICKERS:
            o, h, low, c, v, n, vw = bar_values(sym, ts)
            msgs.append({"T": "b", "S": sym, "o": o, "h": h, "l": low, "c": c, "v": v,
                         "t": t, "n": n, "vw": vw})
    msgs = msgs[:n_bars]
    return [json.dumps(msgs[i:i + batch], separators=(",", ":")).encode()
            for i in range(0, len(msgs), batch)]


def floor_ingest(frames: list[bytes], schema: list[str], path: Path) -> tuple[int, float]:
    """Parse + store the same frames without a websocket: (bars, seconds)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for sql in schema:
        conn.execute(sql)
    n = 0
    t0 = time.perf_counter()
    for f in frames:
        rows = [(m["S"], int(datetime.strptime(m["t"], "%Y-%m-%dT%H:%M:%SZ")
                             .replace(tzinfo=UTC).timestamp()),
                 m["o"], m["h"], m["l"], m["c"], m["v"]) for m in json.loads(f) if m["T"] == "b"]
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO bars (ticker, ts, o, h, l, c, v) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        n += len(rows)
    dt = time.perf_counter() - t0
    conn.close()
    return n, dt


def floor_backfill(url: str, headers: dict[str, str], symbol: str, start: datetime,
                   end: datetime, feed: str) -> tuple[int, int, float]:
    """The emulator's pages fetched with urllib and parsed: (bars, pages, seconds)."""
    n = pages = 0
    token = None
    t0 = time.perf_counter()
    while True:
        q = {"symbols": symbol, "timeframe": "1Min", "limit": "10000", "feed": feed,
             "adjustment": "raw", "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}
        if token:
            q["page_token"] = token
        req = urllib.request.Request(f"{url}/v2/stocks/bars?{urllib.parse.urlencode(q)}",
                                     headers=headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            body = json.loads(r.read())
        pages += 1
        n += sum(len(v) for v in (body.get("bars") or {}).values())
        token = body.get("next_page_token")
        if not token:
            break
    return n, pages, time.perf_counter() - t0


def bench_ingest(n_bars: int, batch: int, tmp: Path) -> None:
    cal = nyse()
    clock = ManualClock(NOW)
    tmp.mkdir(parents=True, exist_ok=True)
    frames = frames_for(n_bars, batch, cal)
    n = sum(len(json.loads(f)) for f in frames)
    (tmp / "frames.pickle").write_bytes(pickle.dumps(frames))
    with EmulatorProcess(NOW, TICKERS) as emu:
        settings = load_settings(path=tmp / "none.toml", env={},
                                 overrides={**emu.settings, "mode": "paper",
                                            "data_dir": str(tmp)})
        market = MarketStore(tmp / "ingest.db", cal)
        stream = AlpacaStream(settings, market, cal, clock=clock, recv_timeout=0.05,
                              gap_delay=0.0)
        handed = [0]
        stream.add_bar_listener(lambda bar: handed.__setitem__(0, handed[0] + 1))
        try:
            stream.start()
            for t in TICKERS:
                stream.subscribe(t)
            assert emu.ask(f"subscribed {len(TICKERS)}") == "ok", "no subscription"
            # Gap detection would queue REST backfills for bars that arrive out of order
            # across sessions; frames are in time order per ticker, so nothing is queued.
            t0 = time.perf_counter()
            sent = float(emu.ask(f"send {tmp / 'frames.pickle'}").split()[1])
            ok = wait(lambda: handed[0] >= n, 120)
            dt = time.perf_counter() - t0
        finally:
            stream.stop()
    print(f"stream ingest: {n:,} bars in {len(frames)} frames of {batch} ({'ok' if ok else 'TIMEOUT'})")
    print(f"  parsed {stream.bars_received:,}, stored {stream.bars_stored:,}, handed on {handed[0]:,}")
    print(f"  emulator send time {sent:.2f} s (its own process); end to end {dt:.2f} s -> "
          f"{n / dt:,.0f} bars/s (target >= 20,000 bars/s)")
    print(f"  market DB rows: {market.count():,}")
    schema = [r[0] for r in market.conn.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'bars' AND sql IS NOT NULL "
        "ORDER BY type DESC")]
    market.close()
    fn, fdt = floor_ingest(frames, schema, tmp / "floor.db")
    report("stream", f"ingest, frames of {batch}", n / dt, fn / fdt, "bars/s", 0.7, "higher",
           "json.loads + plain executemany per frame")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc; 0 elsewhere),
    ended threads included: the emulator serves each urllib connection on a thread that ends
    with it, whose time schedstat (bench_tick's ``cpu_ns``, live threads only) no longer has."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def bench_backfill(tmp: Path) -> None:
    cal = nyse()
    clock = ManualClock(NOW)
    start = NOW - timedelta(days=365)
    chunks: list[tuple[float, int]] = []
    with EmulatorProcess(NOW) as emu:
        settings = load_settings(path=tmp / "none.toml", env={},
                                 overrides={**emu.settings, "mode": "paper",
                                            "data_dir": str(tmp)})
        market = MarketStore(tmp / "backfill.db", cal)
        bf = Backfiller(settings, market, cal, clock=clock)
        assert emu.proc is not None
        # The backfill imports alpaca-py's data client at its first call, once per process
        # (0.6 s pinned to one core): timed here on its own, not inside a year's throughput.
        i0 = time.perf_counter()
        import alpaca.data.historical  # noqa: F401
        import alpaca.data.requests  # noqa: F401
        imported = time.perf_counter() - i0
        e0 = process_cpu(emu.proc.pid)
        t0 = time.perf_counter()
        stored = bf.backfill_range("AAPL", start, NOW,
                                   progress=lambda t, f, k: chunks.append((f, k)))
        dt = time.perf_counter() - t0
        ecpu = process_cpu(emu.proc.pid) - e0
        pages = int(emu.ask("pages"))
        e0 = process_cpu(emu.proc.pid)
        served, fpages, fdt = floor_backfill(emu.url, emu.headers, "AAPL", start, NOW, bf.feed)
        fecpu = process_cpu(emu.proc.pid) - e0
    print(f"backfill 1 year AAPL: {stored:,} regular-session bars stored in {dt:.2f} s "
          f"-> {stored / dt:,.0f} bars/s ({pages} pages, {len(chunks)} progress reports)")
    print(f"  floor: {served:,} bars served in {fpages} pages fetched with urllib in {fdt:.2f} s")
    # Both wait for the emulator serving the same pages; what is not its CPU is the client's.
    print(f"  emulator CPU serving them: {ecpu:.2f} s (backfill), {fecpu:.2f} s (floor); wall "
          f"minus it: {dt - ecpu:.2f} s (backfill"
          f"), {fdt - fecpu:.2f} s (floor); importing alpaca-py's data client before it "
          f"(once a process): {imported:.2f} s")
    report("stream", "backfill 1 year", stored / dt, stored / fdt, "bars/s", 0.8, "higher",
           "urllib pages + json")
    market.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bars", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=1000)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        bench_ingest(args.bars, args.batch, Path(d) / "a")
        # Worst case: every bar in a frame of its own.
        bench_ingest(max(1, args.bars // 10), 1, Path(d) / "b")
        bench_backfill(Path(d))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
