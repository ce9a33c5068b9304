"""Benchmark: Alpaca stream ingest and one year of backfill, against the loopback emulator.

    .venv/bin/python -m bench.bench_stream [--bars 200000] [--batch 1000]

1. Stream ingest: the emulator pushes pre-encoded JSON frames of minute bars (regular-session
   minutes of 10 tickers) through a real websocket; AlpacaStream (websocket-client) parses,
   stores in a real market DB file and hands each bar to a listener. Target >= 20,000 bars/s.
2. Backfill: one year of minute bars for one ticker through alpaca-py's paging (extended
   hours served, regular session kept), reported in seconds and bars/s.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.calendar import nyse  # noqa: E402
from app.clock import ManualClock  # noqa: E402
from app.config import load_settings  # noqa: E402
from app.marketdata.backfill import Backfiller  # noqa: E402
from app.marketdata.stream import AlpacaStream  # noqa: E402
from db.market import MarketStore  # noqa: E402
from tests.fakes.alpaca_emulator import AlpacaEmulator  # noqa: E402
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


def bench_ingest(n_bars: int, batch: int, tmp: Path) -> None:
    cal = nyse()
    clock = ManualClock(NOW)
    emu = AlpacaEmulator(now=clock.now, calendar=cal).start()
    for t in TICKERS:
        emu.add_asset(t)
    settings = load_settings(path=tmp / "none.toml", env={},
                             overrides={**emu.setting_values(), "mode": "paper",
                                        "data_dir": str(tmp)})
    tmp.mkdir(parents=True, exist_ok=True)
    market = MarketStore(tmp / "ingest.db", cal)
    stream = AlpacaStream(settings, market, cal, clock=clock, recv_timeout=0.05, gap_delay=0.0)
    handed = [0]
    stream.add_bar_listener(lambda bar: handed.__setitem__(0, handed[0] + 1))
    frames = frames_for(n_bars, batch, cal)
    n = sum(len(json.loads(f)) for f in frames)
    try:
        stream.start()
        for t in TICKERS:
            stream.subscribe(t)
        assert wait(lambda: emu.subscribed() == set(TICKERS), 10), "no subscription"
        # Gap detection would queue REST backfills for bars that arrive out of order across
        # sessions; frames are in time order per ticker, so nothing is queued.
        session = next(s for s in emu.market_sessions if s.authed)
        t0 = time.perf_counter()
        for f in frames:
            session.conn.send_text(f.decode())
        sent = time.perf_counter() - t0
        ok = wait(lambda: handed[0] >= n, 120)
        dt = time.perf_counter() - t0
    finally:
        stream.stop()
        emu.stop()
    print(f"stream ingest: {n:,} bars in {len(frames)} frames of {batch} ({'ok' if ok else 'TIMEOUT'})")
    print(f"  parsed {stream.bars_received:,}, stored {stream.bars_stored:,}, handed on {handed[0]:,}")
    print(f"  emulator send time {sent:.2f} s; end to end {dt:.2f} s -> {n / dt:,.0f} bars/s "
          f"(target >= 20,000 bars/s)")
    print(f"  market DB rows: {market.count():,}")
    market.close()


def bench_backfill(tmp: Path) -> None:
    cal = nyse()
    clock = ManualClock(NOW)
    emu = AlpacaEmulator(now=clock.now, calendar=cal).start()
    settings = load_settings(path=tmp / "none.toml", env={},
                             overrides={**emu.setting_values(), "mode": "paper",
                                        "data_dir": str(tmp)})
    market = MarketStore(tmp / "backfill.db", cal)
    bf = Backfiller(settings, market, cal, clock=clock)
    start = NOW - timedelta(days=365)
    chunks = []
    try:
        t0 = time.perf_counter()
        stored = bf.backfill_range("AAPL", start, NOW,
                                   progress=lambda t, f, k: chunks.append((f, k)))
        dt = time.perf_counter() - t0
    finally:
        emu.stop()
    pages = sum(1 for r in emu.requests if r[1] == "/v2/stocks/bars")
    print(f"backfill 1 year AAPL: {stored:,} regular-session bars stored in {dt:.2f} s "
          f"-> {stored / dt:,.0f} bars/s ({pages} pages, {len(chunks)} progress reports)")
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
