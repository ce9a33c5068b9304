"""CSVs as data vendors write them: extended hours, early-close days sampled as full days,
other headers, local times, epoch milliseconds. Loaded with pandas; rows outside regular
sessions are dropped and counted (in the report too), never silently and never refused."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from app.backtest.bars import load_csv, write_csv
from app.backtest.errors import BacktestError
from app.backtest.run import Spec, run
from app.backtest.synthetic import random_walk
from db.calendar import EXCHANGE_TZ


def _full_days(calendar, first: date, last: date, seed: int = 5):
    """Bars 04:00-20:00 New York on every weekday (what an extended-hours vendor sends)."""
    days = pd.bdate_range(first, last)
    stamps = []
    for d in days:
        local = pd.date_range(f"{d.date()} 04:00", f"{d.date()} 19:59", freq="1min",
                              tz=str(EXCHANGE_TZ))
        stamps.append(local.tz_convert("UTC"))
    ts = np.concatenate([s.as_unit("s").asi8 for s in stamps])
    walk = random_walk("X", calendar, first, last, seed=seed)
    k = np.resize(np.arange(len(walk)), ts.shape[0])
    return ts, walk.o[k], walk.h[k], walk.l[k], walk.c[k], walk.v[k]


def _frame(ts, o, h, lo, c, v) -> pd.DataFrame:
    return pd.DataFrame({"timestamp": pd.to_datetime(ts, unit="s", utc=True), "open": o,
                         "high": h, "low": lo, "close": c, "volume": v})


def test_extended_hours_and_an_early_close_day_are_dropped_and_counted(tmp_path, calendar):
    # 2024-11-27 (Wed) .. 2024-12-02 (Mon): Thanksgiving closed, 11-29 closes at 13:00.
    ts, o, h, lo, c, v = _full_days(calendar, date(2024, 11, 27), date(2024, 12, 2))
    f = _frame(ts, o, h, lo, c, v)
    f["timestamp"] = f["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "vendor.csv"
    f.to_csv(path, index=False)
    bars = load_csv(path, "X", calendar)
    # 11-27 and 12-02 (390 minutes each) + the early close's 210 (09:30-13:00).
    assert len(bars) == 2 * 390 + 210
    dropped = len(ts) - len(bars)
    assert bars.notes == (bars.notes[0],) and f"dropped {dropped} rows outside NYSE regular " \
        "sessions" in bars.notes[0]
    assert "first line 2 (2024-11-27T09:00:00Z = Wed 2024-11-27 04:00 New York)" in bars.notes[0]
    early = bars.ts[(bars.ts >= 1732860000) & (bars.ts < 1732928400)]  # 11-29 UTC day
    assert pd.Timestamp(int(early[-1]), unit="s", tz="UTC").tz_convert(EXCHANGE_TZ).strftime(
        "%H:%M") == "12:59"
    # The run ticks the early close's 210 minutes only and reports what was dropped.
    r = run(Spec("buy_and_hold", "X", csv=path, capital=10_000.0))
    assert r.problems[0]["kind"] == "warning" and r.problems[0]["reason"] == bars.notes[0]
    assert r.metrics.sessions == 3 and r.metrics.bars == len(bars)


def test_common_headers_and_time_forms_load_the_same_bars(tmp_path, calendar):
    ref = random_walk("X", calendar, date(2024, 3, 8), date(2024, 3, 11), seed=2)  # DST 3-10
    write_csv(ref, tmp_path / "ours.csv")
    utc = pd.to_datetime(ref.ts, unit="s", utc=True)
    local = utc.tz_convert(EXCHANGE_TZ)
    cols = {"o": ref.o, "h": ref.h, "l": ref.l, "c": ref.c, "v": ref.v}
    # Polygon-style: t in epoch milliseconds, short names.
    pd.DataFrame({"t": ref.ts * 1000, **cols}).to_csv(tmp_path / "poly.csv", index=False)
    # yfinance-style: Datetime with New York offsets (-05:00 then -04:00 after the DST change).
    pd.DataFrame({"Datetime": local.strftime("%Y-%m-%d %H:%M:%S%z").str.replace(
        r"(\d\d)(\d\d)$", r"\1:\2", regex=True), "Open": ref.o, "High": ref.h, "Low": ref.l,
        "Close": ref.c, "Adj Close": ref.c, "Volume": ref.v}).to_csv(tmp_path / "yf.csv",
                                                                       index=False)
    # Separate date and time columns in New York time, no zone: needs tz.
    pd.DataFrame({"Date": local.strftime("%Y-%m-%d"), "Time": local.strftime("%H:%M"),
                  "Open": ref.o, "High": ref.h, "Low": ref.l, "Close": ref.c,
                  "Vol": ref.v}).to_csv(tmp_path / "split.csv", index=False)
    loaded = [load_csv(tmp_path / "ours.csv", "X", calendar),
              load_csv(tmp_path / "poly.csv", "X", calendar),
              load_csv(tmp_path / "yf.csv", "X", calendar),
              load_csv(tmp_path / "split.csv", "X", calendar, tz="America/New_York")]
    for b in loaded:
        for a in ("ts", "o", "h", "l", "c", "v"):
            assert np.array_equal(getattr(b, a), getattr(ref, a)), a
        assert b.notes == ()
    with pytest.raises(BacktestError, match=r"split.csv line 2: timestamp '2024-03-08 09:30' "
                                            r"has no timezone.*--tz America/New_York"):
        load_csv(tmp_path / "split.csv", "X", calendar)
    with pytest.raises(BacktestError, match="--tz 'Mars/Olympus' is not a time zone"):
        load_csv(tmp_path / "split.csv", "X", calendar, tz="Mars/Olympus")


def test_a_csv_with_only_closed_hours_is_refused(tmp_path, calendar):
    path = Path(tmp_path / "night.csv")
    path.write_text("timestamp,open,high,low,close,volume\n"
                    "2024-03-04T23:00:00Z,1,1,1,1,1\n2024-03-04T23:01:00Z,1,1,1,1,1\n")
    with pytest.raises(BacktestError, match="every row is outside NYSE regular sessions: 2 rows"):
        load_csv(path, "X", calendar)


def test_one_pass_iso_parse_and_the_row_by_row_path_agree(tmp_path, calendar):
    """The documented format (ISO-8601 'Z'), and naive New York times with tz, are parsed in
    one call; a column the one pass cannot take (some rows epoch seconds as text, one with
    blanks around it) goes row by row; all give the same minutes."""
    from app.backtest.bars import _iso_fast

    ref = random_walk("X", calendar, date(2024, 3, 8), date(2024, 3, 11), seed=2)
    write_csv(ref, tmp_path / "ours.csv")
    stamps = pd.read_csv(tmp_path / "ours.csv")["timestamp"]
    assert np.array_equal(_iso_fast(stamps, None), ref.ts)
    local = pd.to_datetime(ref.ts, unit="s", utc=True).tz_convert(EXCHANGE_TZ)
    naive = pd.Series(local.strftime("%Y-%m-%d %H:%M:%S"))
    assert _iso_fast(naive, None) is None  # no zone: the row-aware path names the line
    assert np.array_equal(_iso_fast(naive, ZoneInfo("America/New_York")), ref.ts)
    mixed = stamps.astype(object).copy()
    mixed.iloc[::7] = [str(int(t)) for t in ref.ts[::7]]
    mixed.iloc[3] = f"  {mixed.iloc[3]}  "
    assert _iso_fast(mixed, None) is None
    frame = pd.read_csv(tmp_path / "ours.csv")
    frame["timestamp"] = mixed
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    b = load_csv(tmp_path / "mixed.csv", "X", calendar)
    assert np.array_equal(b.ts, ref.ts) and np.array_equal(b.c, ref.c)
