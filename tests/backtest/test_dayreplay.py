"""``autotrader run --replay DATE``: the headless app over one stored day, as a user runs it.

A real process (main.py) on a real market DB: the day's bars reach the replay's own folder
minute by minute exactly as stored, the demo's algorithms trade them on the simulated broker,
the run ends after the day's last minute, and the source folder is left as it was."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from app.backtest.dayreplay import new_folder, parse_day, prepare_replay
from app.backtest.errors import BacktestError
from app.backtest.synthetic import random_walk
from app.config import Settings
from app.marketdata.replay import replay_source
from db.calendar import nyse
from db.market import MarketStore

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2024, 6, 4)


@pytest.fixture
def src() -> Iterator[Path]:
    """A data folder whose market DB holds AAPL and MSFT from 2024-05-28 to the day."""
    base = Path(tempfile.mkdtemp(prefix="atr"))  # short: the control socket lives below it
    m = MarketStore(base / "d" / "market.db", nyse())
    for tk, seed in (("AAPL", 1), ("MSFT", 2)):
        b = random_walk(tk, nyse(), date(2024, 5, 28), DAY, seed=seed, start_price=190.0,
                        vol=0.001, decimals=2)
        m.insert_rows([(tk, int(b.ts[i]), float(b.o[i]), float(b.h[i]), float(b.l[i]),
                        float(b.c[i]), int(b.v[i])) for i in range(len(b))])
    m.close()
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _bars(db: Path, ticker: str, lo: int, hi: int) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return c.execute("SELECT ts, o, h, l, c, v FROM bars WHERE ticker = ? AND ts >= ? "
                         "AND ts < ? ORDER BY ts", (ticker, lo, hi)).fetchall()


def test_bad_requests_are_one_line_each(src):
    cal = nyse()
    for text, said in (("2024-06-08", "no session that day"), ("2024-6-4x", "YYYY-MM-DD")):
        with pytest.raises(BacktestError, match=said):
            parse_day(text, cal)
    s = Settings(data_dir=str(src / "d"))
    with pytest.raises(BacktestError, match="no bars that day .*AAPL, MSFT.*data fetch"):
        prepare_replay(s, "2024-07-08")
    with pytest.raises(BacktestError, match="no market DB"):
        prepare_replay(Settings(data_dir=str(src / "empty")), "2024-06-04")
    assert not (src / "d" / "replays").exists()  # nothing made for a refused request


def test_each_replay_gets_a_new_folder_of_its_own(src):
    s = Settings(data_dir=str(src / "d"), mode="paper")
    one, minutes = prepare_replay(s, "2024-06-04")
    two, _ = prepare_replay(s, "2024-06-04")
    assert minutes == 390
    assert one.data_path == src / "d" / "replays" / "2024-06-04-1"
    assert two.data_path == new_folder(src / "d" / "replays", DAY).with_name("2024-06-04-2")
    assert one.effective_mode == "demo" and one.demo.start_date == "2024-06-04"
    assert one.demo.tickers == ("AAPL", "MSFT")  # the configured demo tickers with bars
    r = replay_source(one.data_path)
    assert r is not None and r.day == DAY and r.market_db == src / "d" / "market.db"
    assert replay_source(src / "d") is None


@pytest.mark.slow
def test_headless_replay_runs_the_stored_day_and_stops_after_the_close(src):
    env = {"HOME": str(src / "home"), "XDG_CONFIG_HOME": str(src / "home" / ".config"),
           "AUTOTRADER_LOG_DIR": str(src / "log"), "PYTHONUNBUFFERED": "1",
           "PATH": "/usr/bin:/bin"}
    before = (src / "d" / "market.db").read_bytes()
    r = subprocess.run([sys.executable, "main.py", "run", "--replay", "2024-06-04",
                        "--headless", "--speed", "6000", "--data-dir", str(src / "d")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
                       stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "AutoTrader REPLAY of 2024-06-04 (simulated broker, SIMULATED MONEY)" in out
    assert "clock 2024-06-04 09:30" in out and "390 ticks run" in out
    assert "[2024-06-04 15:59 ET]" in out and "[2024-06-04 16:00 ET]" not in out
    folder = src / "d" / "replays" / "2024-06-04-1"
    session = nyse().session_on(DAY)
    lo, hi = int(session.open.timestamp()), int(session.close.timestamp())
    for tk in ("AAPL", "MSFT"):
        # Every bar the day's ticks could see (the 15:59 tick sees up to 15:58), as stored,
        # and none of a later day. The run ends at that tick: the 15:59 bar is written only
        # if the feed's thread passed 16:00 first (a race at x6000, either is right).
        got = _bars(folder / "market.db", tk, lo, hi + 86400 * 7)
        stored = _bars(src / "d" / "market.db", tk, lo, hi)
        assert len(got) in (389, 390) and got == stored[:len(got)]
        # ... and the five sessions before it as history (the plugins' look-back).
        assert _bars(folder / "market.db", tk, lo - 86400 * 7, lo) == \
               _bars(src / "d" / "market.db", tk, lo - 86400 * 7, lo)
    assert "buy" in out and "fill: algorithm 1 buy" in out  # the demo's SMA traded the day
    assert (src / "d" / "market.db").read_bytes() == before
    assert not (src / "d" / "system.db").exists()  # the source folder was never run in


def test_the_replay_unlocks_with_the_pin_of_its_source_folder(src):
    from app.security import PinGuard
    from db.system import SystemStore

    s = Settings(data_dir=str(src / "d"))
    home = SystemStore(s.system_db_path)
    PinGuard(home).set_pin("246810")
    home.close()
    replay, _ = prepare_replay(s, "2024-06-04")
    copy = SystemStore(replay.system_db_path)
    try:
        assert PinGuard(copy).is_set and PinGuard(copy).check("246810").ok
    finally:
        copy.close()
