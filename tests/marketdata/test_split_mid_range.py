"""A stock split in the middle of a fetched or replayed range (issue 11): the prices before and
after it are on one basis for charts, backtests, replays and an algorithm's history.

The split is the documented example's shape (fixtures/corporate_actions.json, from
docs.alpaca.markets/reference/corporateactions-1: NVDA 10-for-1, ex-date 2024-06-10). The
emulator serves raw bars with the x10 cliff on the ex-date, as Alpaca's ``adjustment=raw``
does, and split-adjusted ones for ``adjustment=split`` (the historical bars' adjustment
parameter; docs.alpaca.markets/changelog/optionally-adjust-bars-after-spin-offs: raw, split,
spin-off... and combinations such as ``split,spin-off``); the app fetches raw and adjusts
itself, so a later split (applied by the engine on its ex-date) keeps working.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import db.corporate as dbc
from app.backtest.bars import load_store
from app.backtest.splits import suspected
from app.broker.alpaca_clients import split_reader
from app.clock import ManualClock
from app.marketdata.backfill import Backfiller
from app.marketdata.history_fetch import FetchError, HistoryFetch
from app.marketdata.replay import ReplayFeed, ReplaySource
from db.market import MarketStore

FIXTURE = Path(__file__).parents[1] / "fakes" / "fixtures" / "corporate_actions.json"
SPLIT = json.loads(FIXTURE.read_text())["example"]["corporate_actions"]["forward_splits"][0]
EX = date.fromisoformat(SPLIT["ex_date"])  # 2024-06-10, a Monday
NOW = datetime(2024, 6, 12, 15, 0, tzinfo=UTC)  # Wednesday 11:00 New York
TODAY = date(2024, 6, 12)


@pytest.fixture
def clock() -> ManualClock:  # the emulator's and the app's "now": two sessions after the split
    return ManualClock(NOW)


def _minutes(calendar, day: date) -> tuple[int, int]:
    s = calendar.current_or_next_session(datetime(day.year, day.month, day.day, 12,
                                                  tzinfo=UTC))
    return int(s.open.timestamp()), int(s.close.timestamp())


def _job(settings, store, calendar, clock, tmp_path, **kw) -> HistoryFetch:
    bf = Backfiller(settings, store, calendar, clock=clock, rate_limit_min=0.05)
    return HistoryFetch(bf.fetch_rows, calendar, tmp_path, splits=split_reader(settings),
                        today=lambda: TODAY, **kw)


def test_a_fetch_across_a_split_stores_one_price_basis(emulator, settings, market_store,
                                                       calendar, clock, tmp_path) -> None:
    emulator.schedule_action("forward_splits", dict(SPLIT))
    ex_open, _ = _minutes(calendar, EX)
    _, prev_close = _minutes(calendar, date(2024, 6, 7))
    raw_before, raw_after = emulator.bar("NVDA", prev_close - 60), emulator.bar("NVDA", ex_open)
    assert raw_before["c"] / raw_after["o"] > 8  # Alpaca's raw bars: the cliff is real
    # A bar the stream stored live before anyone knew of the split (raw, pre-split basis).
    live_ts = _minutes(calendar, date(2024, 6, 4))[0] + 600
    b = emulator.bar("NVDA", live_ts)
    market_store.insert_rows([("NVDA", live_ts, b["o"], b["h"], b["l"], b["c"], b["v"])])

    job = _job(settings, market_store, calendar, clock, tmp_path, market=market_store)
    p = job.run(["NVDA", "AAPL"], date(2024, 6, 5), date(2024, 6, 11))
    assert p.splits == ["NVDA 10-for-1 split on 2024-06-10"]
    assert any("corporate-actions" in q and "forward_split" in q for q in emulator.queries)
    assert all("adjustment=raw" in q for q in emulator.queries if "stocks/bars" in q)

    lo, hi = _minutes(calendar, date(2024, 6, 4))[0], _minutes(calendar, date(2024, 6, 11))[1]
    stored = market_store.bars_between("NVDA", lo, hi)
    assert len(stored) == 390 * 5 + 1
    for ts, o, h, low, c, v in stored:  # every minute equals Alpaca's split-adjusted bar
        adj = emulator.bar("NVDA", ts, adjusted=True)
        assert (o, h, low, c) == pytest.approx((adj["o"], adj["h"], adj["l"], adj["c"]),
                                               abs=2e-3), ts
        assert v == adj["v"]
    # AAPL had no split: untouched.
    a = market_store.bars_between("AAPL", ex_open - 86_400 * 3, ex_open + 60)[-1]
    assert a[4] == emulator.bar("AAPL", a[0])["c"]

    # Charts and an algorithm's history (the last bars before a minute of the ex-date):
    hist = market_store.last_n_rows("NVDA", 30, ex_open + 15 * 60)
    closes = [r[4] for r in hist]
    assert max(closes) / min(closes) < 1.2  # the overnight into the ex-date is a normal move
    # Backtests read the same bars: no unadjusted split suspected.
    bars = load_store(market_store, "NVDA", lo, hi)
    assert suspected(bars) == []

    # The engine applying the same Alpaca split on its ex-date scales nothing twice.
    ex_ts = dbc.ex_epoch(SPLIT["ex_date"])
    assert dbc.adjust_bars(market_store, SPLIT["id"], "NVDA", ex_ts, 0.1) == -1
    # A later gap backfill of a pre-split minute (raw from Alpaca) is scaled on insert.
    miss = prev_close - 120
    market_store.conn.execute("DELETE FROM bars WHERE ticker = 'NVDA' AND ts = ?", (miss,))
    Backfiller(settings, market_store, calendar, clock=clock).backfill_many(
        ["NVDA"], datetime.fromtimestamp(miss, UTC), datetime.fromtimestamp(miss + 60, UTC))
    got = market_store.bars_between("NVDA", miss, miss + 60)[0]
    assert got[4] == pytest.approx(emulator.bar("NVDA", miss, adjusted=True)["c"], abs=2e-3)
    # Fetching the same range again changes nothing (the split is applied once).
    _job(settings, market_store, calendar, clock, tmp_path, market=market_store).run(
        ["NVDA"], date(2024, 6, 5), date(2024, 6, 11))
    assert market_store.bars_between("NVDA", lo, hi) == stored

    # A replay of the day after the split: its history sessions straddle the ex-date.
    replay_db = MarketStore(tmp_path / "replay-market.db", calendar)
    feed = ReplayFeed(replay_db, clock, calendar,
                      ReplaySource(date(2024, 6, 11), market_store.path))
    try:
        sessions = calendar.sessions_between(date(2024, 6, 6), date(2024, 6, 11))
        closes = [float(r[4]) for s in sessions for r in feed.session_bars("NVDA", s)]
        assert len(closes) == 390 * len(sessions)
        steps = [b / a for a, b in zip(closes, closes[1:], strict=False)]
        assert max(steps) < 1.1 and min(steps) > 0.9  # no x0.1 step anywhere
    finally:
        feed.stop()
        replay_db.close()


def test_csv_fetch_across_a_split_is_adjusted_and_says_so(emulator, settings, market_store,
                                                          calendar, clock, tmp_path) -> None:
    emulator.schedule_action("forward_splits", dict(SPLIT))
    out = tmp_path / "csv"
    p = _job(settings, market_store, calendar, clock, tmp_path, csv_dir=out).run(
        ["NVDA"], date(2024, 6, 6), date(2024, 6, 11))
    assert p.splits == ["NVDA 10-for-1 split on 2024-06-10"]
    rows = list(csv.DictReader((out / "NVDA.csv").open()))
    assert len(rows) == 390 * 4
    for r in rows[::97]:
        ts = int(datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp())
        assert float(r["close"]) == pytest.approx(emulator.bar("NVDA", ts, adjusted=True)["c"],
                                                  abs=2e-3)
    assert market_store.bar_span("NVDA") is None  # the CSV job leaves the DB alone


def test_splits_unreadable_stops_before_any_bar_is_fetched(emulator, settings, market_store,
                                                           calendar, clock, tmp_path) -> None:
    emulator.faults.fail_status, emulator.faults.fail_count = 403, 1
    emulator.faults.fail_prefix = "/v1/corporate-actions"
    with pytest.raises(FetchError, match="cannot read the splits of NVDA"):
        _job(settings, market_store, calendar, clock, tmp_path, market=market_store).run(
            ["NVDA"], date(2024, 6, 5), date(2024, 6, 11))
    assert not any("stocks/bars" in q for q in emulator.queries)
    assert market_store.bar_span("NVDA") is None


@pytest.mark.parametrize("raw", [False, True])
def test_the_data_fetch_command_names_the_splits_or_stores_raw(calendar, tmp_path, raw) -> None:
    """``autotrader data fetch`` as a user runs it (a real process, wall clock): it says which
    splits the prices are adjusted for; ``--raw`` skips the corporate actions and stores
    Alpaca's raw prices (the cliff stays)."""
    import os
    import subprocess
    import sys

    from tests.fakes.alpaca_emulator import AlpacaEmulator

    root = Path(__file__).resolve().parents[2]
    emu = AlpacaEmulator(calendar=calendar).start()
    try:
        emu.schedule_action("forward_splits", dict(SPLIT))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRADER_", "APCA_"))}
        env.update({"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
                    "AUTOTRADER_DATA_DIR": str(tmp_path / "data"),
                    "AUTOTRADER_LOG_DIR": str(tmp_path / "log"), "AUTOTRADER_MODE": "paper",
                    "APCA_API_KEY_ID": emu.key_id, "APCA_API_SECRET_KEY": emu.secret_key,
                    "AUTOTRADER_ALPACA_TRADING_URL": emu.url,
                    "AUTOTRADER_ALPACA_DATA_URL": emu.url})
        r = subprocess.run([sys.executable, "main.py", "data", "fetch", "NVDA", "--start",
                            "2024-06-07", "--end", "2024-06-10", *(["--raw"] if raw else [])],
                           cwd=root, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        market = MarketStore(tmp_path / "data" / "market.db", calendar)
        try:
            ex_open, _ = _minutes(calendar, EX)
            first, last_before = (market.bars_between("NVDA", ex_open, ex_open + 60)[0],
                                  market.last_n_rows("NVDA", 1, ex_open)[0])
        finally:
            market.close()
        step = first[1] / last_before[4]  # the ex-date's first open / the close before it
        if raw:
            assert "split-adjusted" not in r.stdout and 0.05 < step < 0.2
            assert not any("corporate-actions" in q for q in emu.queries)
        else:
            assert "split-adjusted (today's share basis) for: NVDA 10-for-1 split on " \
                   "2024-06-10" in r.stdout
            assert 0.9 < step < 1.1
    finally:
        emu.stop()
