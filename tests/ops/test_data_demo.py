"""``autotrader data fetch`` in the demo (no keys): the synthetic market's bars up to the demo's
clock, stored once, usable by a backtest; clear refusals for what is not there."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from db.calendar import nyse
from db.market import MarketStore

ROOT = Path(__file__).resolve().parents[2]


def run(base: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRADER_", "APCA_"))}
    env.update({"HOME": str(base / "home"), "XDG_CONFIG_HOME": str(base / "home" / ".config"),
                "AUTOTRADER_DATA_DIR": str(base / "d"), "AUTOTRADER_LOG_DIR": str(base / "log"),
                "AUTOTRADER_DEMO_START_DATE": "2024-06-04"})
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env, text=True,
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)


def test_demo_fetch_fills_from_the_synthetic_market_up_to_its_clock(tmp_path: Path) -> None:
    from app.clock import WallClock
    from app.marketdata.synthetic import SyntheticFeed

    r = run(tmp_path, "data", "fetch", "AAPL,SPY", "--start", "2024-05-20", "--end",
            "2024-06-30")
    assert r.returncode == 0, r.stderr
    assert "demo" in r.stdout
    cal = nyse()
    # The demo starts at 2024-06-04's open: nothing from then on (its future) is stored.
    sessions = cal.sessions_between(date(2024, 5, 20), date(2024, 6, 3))
    market = MarketStore(tmp_path / "d" / "market.db", cal)
    try:
        gen = SyntheticFeed(market, WallClock(), cal, seed=42)
        for t in ("AAPL", "SPY"):
            want = sum(len(gen.session_bars(t, s)) for s in sessions)
            assert market.count(t) == want
            # the same bars the demo itself shows (same seed)
            first = gen.session_bars(t, sessions[0])[0]
            lo = int(sessions[0].open.timestamp())
            stored = market.bars_between(t, lo, lo + 60)[0]
            assert stored[0] == lo and abs(stored[4] - first[4]) < 1e-9
    finally:
        market.close()
    again = run(tmp_path, "data", "fetch", "AAPL,SPY", "--start", "2024-05-20", "--end",
                "2024-06-30")
    assert again.returncode == 0 and "0 bars" in again.stdout
    listed = run(tmp_path, "data", "list")
    assert "AAPL" in listed.stdout and "SPY" in listed.stdout


def test_export_of_a_ticker_with_no_bars_says_so(tmp_path: Path) -> None:
    run(tmp_path, "data", "fetch", "AAPL", "--start", "2024-05-30", "--end", "2024-05-31")
    r = run(tmp_path, "data", "export", "QQQ", "--csv", str(tmp_path / "q.csv"))
    assert r.returncode == 1
    assert "no bars of QQQ stored" in r.stderr
    bad = run(tmp_path, "data", "fetch", "AAPL", "--start", "2024-06-10", "--end", "2024-06-01")
    assert bad.returncode == 2 and "before --start" in bad.stderr
