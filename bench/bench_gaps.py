"""Gap backfill under IEX conditions: 100 thinly traded tickers on the loopback emulator.

    .venv/bin/python bench/bench_gaps.py [--tickers 100] [--minutes 30] [--minute-seconds 2]

Each ticker trades in ~25% of minutes (IEX sends no bar for a minute without trades), and 2%
of the bars that exist are lost on the stream. AlpacaStream (websocket-client, real market
DB) receives the minutes on a simulated clock; every gap between two bars of a ticker must be
checked against REST. Market minutes are compressed to ``--minute-seconds`` of wall time and
the gap batching window is scaled with them (production: 15 s per 60 s minute).

Prints REST calls per market minute (target < 10), the floor (one request per batch window
that had gaps), the ratio to that floor, and what one request per gap would have cost.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.clock import ManualClock  # noqa: E402
from app.config import load_settings  # noqa: E402
from app.marketdata.backfill import Backfiller  # noqa: E402
from app.marketdata.stream import AlpacaStream  # noqa: E402
from db.calendar import nyse  # noqa: E402
from db.market import MarketStore  # noqa: E402
from tests.fakes.alpaca_emulator import AlpacaEmulator  # noqa: E402

START = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)  # 10:00 New York


def wait(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return bool(cond())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickers", type=int, default=100)
    ap.add_argument("--minutes", type=int, default=30)
    ap.add_argument("--minute-seconds", type=float, default=2.0)
    ap.add_argument("--liquidity", type=float, default=0.25)
    ap.add_argument("--lost", type=float, default=0.02)
    args = ap.parse_args()
    tickers = [f"Q{i:03d}" for i in range(args.tickers)]
    cal = nyse()
    clock = ManualClock(START)
    with tempfile.TemporaryDirectory() as d, AlpacaEmulator(now=clock.now, calendar=cal) as emu:
        tmp = Path(d)
        for t in tickers:
            emu.add_asset(t)
            emu.illiquid[t] = args.liquidity
        settings = load_settings(path=tmp / "none.toml", env={}, overrides={
            **emu.setting_values(), "mode": "paper", "data_dir": str(tmp)})
        market = MarketStore(tmp / "market.db", cal)
        bf = Backfiller(settings, market, cal, clock=clock)
        window = args.minute_seconds * 15 / 60
        stream = AlpacaStream(settings, market, cal, clock=clock, backfiller=bf,
                              recv_timeout=0.05, gap_delay=window)
        stream.start()
        assert wait(lambda: stream.status.state == "connected", 10), stream.status
        for t in tickers:
            stream.subscribe(t)
        assert wait(lambda: len(emu.subscribed()) == len(tickers), 10)
        first = int(START.timestamp())
        for t in tickers:  # lose a share of the bars that exist on the stream
            for m in range(args.minutes):
                ts = first + 60 * m
                if zlib.crc32(f"lost:{t}:{ts}".encode()) % 1000 < args.lost * 1000:
                    emu.faults.skip_stream.add((t, ts))
        assert wait(stream.wait_idle, 30)
        req0, fills0 = bf.requests, stream.gap_fills
        gaps_naive = 0
        last: dict[str, int] = {}
        t0 = time.monotonic()
        for m in range(args.minutes):
            ts = first + 60 * m
            clock.set(datetime.fromtimestamp(ts + 60, UTC))
            emu.emit_minute(ts)
            for t in tickers:  # what "one request per gap" would have sent
                if emu.bar(t, ts) is not None and (t, ts) not in emu.faults.skip_stream:
                    if t in last and ts > last[t] + 60:
                        gaps_naive += 1
                    last[t] = ts
            time.sleep(max(0.0, t0 + (m + 1) * args.minute_seconds - time.monotonic()))
        wait(stream.wait_idle, 60)
        stream.stop()
        calls = bf.requests - req0
        batches = stream.gap_fills - fills0
        per_min = calls / args.minutes
        floor = max(1, batches) / args.minutes
        lost = sum(1 for t in tickers for m in range(args.minutes)
                   if (t, first + 60 * m) in emu.faults.skip_stream
                   and emu.bar(t, first + 60 * m) is not None)
        have = sum(1 for t in tickers for m in range(args.minutes)
                   if market.bars_between(t, first + 60 * m, first + 60 * m + 60))
        # A bar lost after a ticker's last received one is found when its next bar comes.
        want = sum(1 for t in tickers for m in range(args.minutes)
                   if emu.bar(t, first + 60 * m) is not None and first + 60 * m <= last.get(t, 0))
        have = sum(1 for t in tickers for m in range(args.minutes)
                   if first + 60 * m <= last.get(t, 0)
                   and market.bars_between(t, first + 60 * m, first + 60 * m + 60))
        missing = [(t, first + 60 * m) for t in tickers for m in range(args.minutes)
                   if emu.bar(t, first + 60 * m) is not None and first + 60 * m <= last.get(t, 0)
                   and not market.bars_between(t, first + 60 * m, first + 60 * m + 60)]
        market.close()
    for t, ts in missing:
        print(f"missing {t} {datetime.fromtimestamp(ts, UTC):%H:%M} (lost on the stream: "
              f"{(t, ts) in emu.faults.skip_stream})")
    print(f"{args.tickers} tickers trading in ~{args.liquidity:.0%} of minutes, "
          f"{args.minutes} market minutes, {lost} bars lost on the stream")
    print(f"REST calls: {calls} in {batches} gap batches = {per_min:.2f} per minute "
          f"(target < 10: {'met' if per_min < 10 else 'MISSED'})")
    print(f"floor (one request per batch window with gaps): {floor:.2f}/min, "
          f"ratio {per_min / floor:.2f}x")
    print(f"one request per gap would have been {gaps_naive} calls = "
          f"{gaps_naive / args.minutes:.1f} per minute ({gaps_naive / max(1, calls):.0f}x more)")
    print(f"bars in the market DB: {have} of {want} that exist up to each ticker's last bar")
    return 0 if per_min < 10 and have == want else 1


if __name__ == "__main__":
    sys.exit(main())
