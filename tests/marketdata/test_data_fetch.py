"""``autotrader data fetch|list`` against the loopback Alpaca emulator through real alpaca-py:
every page, several symbols per request, 429s waited out, regular session only, and a resumed
fetch (Ctrl+C, a crash mid-CSV) storing every bar exactly once."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from app.config import load_settings
from app.marketdata.backfill import Backfiller
from app.marketdata.history_fetch import STATE_FILE, HistoryFetch
from db.market import MarketStore
from tests.fakes.alpaca_emulator import AlpacaEmulator

ROOT = Path(__file__).resolve().parents[2]
START, END = date(2024, 2, 20), date(2024, 3, 1)  # 9 sessions (Feb 19 was a holiday)


@pytest.fixture
def emu(calendar):
    e = AlpacaEmulator(calendar=calendar).start()
    yield e
    e.stop()


def truth(emu: AlpacaEmulator, calendar, ticker: str) -> list[int]:
    """The emulator's regular-session minutes of ``ticker`` that have a bar."""
    out = []
    for s in calendar.sessions_between(START, END):
        for m in calendar.session_minutes(s.day):
            ts = int(m.timestamp())
            if emu.bar(ticker, ts) is not None:
                out.append(ts)
    return out


def settings_for(emu: AlpacaEmulator, tmp_path: Path):
    values = dict(emu.setting_values(), mode="paper", data_dir=str(tmp_path / "data"))
    return load_settings(path=tmp_path / "absent.toml", env={}, overrides=values)


def stored(market: MarketStore, ticker: str) -> list[int]:
    return [r[0] for r in market.conn.execute(
        "SELECT ts FROM bars WHERE ticker = ? ORDER BY ts", (ticker,))]


class Interrupt:
    """A fetch function that presses Ctrl+C before its ``after``-th call."""

    def __init__(self, bf: Backfiller, after: int) -> None:
        self.bf, self.after, self.calls = bf, after, 0

    def __call__(self, tickers, lo, hi):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        return self.bf.fetch_rows(tickers, lo, hi)


def test_cli_fetch_every_page_many_symbols_then_list(emu, calendar, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRADER_", "APCA_"))}
    env.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                "AUTOTRADER_DATA_DIR": str(tmp_path / "data"),
                "AUTOTRADER_LOG_DIR": str(tmp_path / "log"), "AUTOTRADER_MODE": "paper",
                "APCA_API_KEY_ID": emu.key_id, "APCA_API_SECRET_KEY": emu.secret_key,
                "AUTOTRADER_ALPACA_TRADING_URL": emu.url, "AUTOTRADER_ALPACA_DATA_URL": emu.url})
    emu.faults.fail_status, emu.faults.fail_count = 429, 2
    emu.faults.fail_prefix = "/v2/stocks/bars"
    r = subprocess.run([sys.executable, "main.py", "data", "fetch", "AAPL,msft,NVDA,SPY",
                        "--start", str(START), "--end", str(END), "--sessions-per-request", "10"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "bars/s" in r.stderr and "100.0%" in r.stderr
    assert emu.faults.fail_count == 0  # both 429s were answered and waited out
    bar_queries = [q for q in emu.queries if q.startswith("/v2/stocks/bars")]
    assert all("symbols=AAPL,MSFT,NVDA,SPY" in q for q in bar_queries)  # one request for all
    assert sum("page_token" in q for q in bar_queries) > 0  # 10,000-bar pages followed
    market = MarketStore(tmp_path / "data" / "market.db", calendar)
    for t in ("AAPL", "MSFT", "NVDA", "SPY"):
        assert stored(market, t) == truth(emu, calendar, t)  # regular session, all of it
    market.close()
    assert emu.secret_key not in r.stdout + r.stderr
    assert emu.secret_key not in (tmp_path / "log" / "autotrader.log").read_text()
    assert not (tmp_path / "data" / STATE_FILE).exists()  # a finished job leaves no state
    r = subprocess.run([sys.executable, "main.py", "data", "list", "--json"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=60)
    rows = json.loads(r.stdout)
    assert [x["ticker"] for x in rows] == ["AAPL", "MSFT", "NVDA", "SPY"]
    assert rows[0]["bars"] == len(truth(emu, calendar, "AAPL"))
    assert rows[0]["sessions"] == 9 and rows[0]["gaps"] == []
    assert rows[0]["first"] == "2024-02-20T14:30:00Z"


def test_resumed_db_fetch_stores_every_bar_once(emu, calendar, tmp_path: Path) -> None:
    s = settings_for(emu, tmp_path)
    s.data_path.mkdir(parents=True)
    market = MarketStore(s.market_db_path, calendar)
    bf = Backfiller(s, market, calendar)
    first = Interrupt(bf, after=2)
    job = HistoryFetch(first, calendar, s.data_path, market=market, sessions_per_chunk=2)
    with pytest.raises(KeyboardInterrupt):
        job.run(["AAPL", "NVDA"], START, END)
    assert json.loads((s.data_path / STATE_FILE).read_text())  # what is done is recorded
    half = len(stored(market, "AAPL"))
    assert 0 < half < len(truth(emu, calendar, "AAPL"))
    again = Interrupt(bf, after=99)
    p = HistoryFetch(again, calendar, s.data_path, market=market, sessions_per_chunk=2).run(
        ["AAPL", "NVDA"], START, END)
    assert again.calls == 3  # 5 chunks of 2 sessions; 2 were done
    assert p.skipped == 4
    for t in ("AAPL", "NVDA"):
        ts = stored(market, t)
        assert ts == truth(emu, calendar, t) and len(ts) == len(set(ts))
    market.close()


def test_resumed_csv_after_a_crash_mid_write(emu, calendar, tmp_path: Path) -> None:
    s = settings_for(emu, tmp_path)
    s.data_path.mkdir(parents=True)
    out = tmp_path / "csv"
    bf = Backfiller(s, MarketStore(s.market_db_path, calendar), calendar)
    with pytest.raises(KeyboardInterrupt):
        HistoryFetch(Interrupt(bf, after=3), calendar, s.data_path, csv_dir=out,
                     sessions_per_chunk=2).run(["MSFT"], START, END)
    with (out / "MSFT.csv").open("a") as f:  # a crash while a chunk was being written
        f.write("2024-02-28T14:30:00Z,1.0,1.0,1.0,1.0,5\n2024-02-28T14:31:00Z,1.0,")
    HistoryFetch(Interrupt(bf, after=99), calendar, s.data_path, csv_dir=out,
                 sessions_per_chunk=2).run(["MSFT"], START, END)
    with (out / "MSFT.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["timestamp", "open", "high", "low", "close", "volume"]
    from datetime import UTC, datetime
    ts = [int(datetime.strptime(r[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
          for r in rows[1:]]
    assert ts == truth(emu, calendar, "MSFT")
    # and the backtest reads it as it is
    from app.backtest.bars import load_csv
    assert len(load_csv(out / "MSFT.csv", "MSFT", calendar)) == len(ts)
