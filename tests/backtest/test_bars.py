"""Loading bars: the documented CSV format, every bad input named clearly, DB slices."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from app.backtest.bars import load_csv, write_csv
from app.backtest.errors import BacktestError
from app.backtest.run import Spec, load_bars, select
from app.backtest.synthetic import random_walk

HEADER = "timestamp,open,high,low,close,volume\n"
GOOD = [
    "2024-03-04T14:30:00Z,10.0,10.5,9.5,10.2,100\n",
    "2024-03-04T14:31:00Z,10.2,10.6,10.1,10.4,200\n",
    "2024-03-04T14:32:00Z,10.4,10.4,10.0,10.1,50\n",
]


def _csv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bars.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_the_reference_fixture_loads(ref_bars):
    assert len(ref_bars) == 1170  # three full sessions
    assert ref_bars.first_day() == date(2024, 3, 4) and ref_bars.last_day() == date(2024, 3, 6)
    assert ref_bars.ts.dtype == np.int64 and (np.diff(ref_bars.ts) > 0).all()


def test_other_timestamp_forms_column_order_and_extra_columns(tmp_path, calendar):
    text = ("Volume,Close,Low,High,Open,Timestamp,vwap\n"
            "100,10.2,9.5,10.5,10.0,1709562600,1\n"
            "200,10.4,10.1,10.6,10.2,2024-03-04T09:31:00-05:00,1\n")
    bars = load_csv(_csv(tmp_path, text), "X", calendar)
    assert bars.ts.tolist() == [1709562600, 1709562660]
    assert bars.c.tolist() == [10.2, 10.4] and bars.v.tolist() == [100, 200]


def test_write_and_read_back(tmp_path, calendar):
    b = random_walk("X", calendar, date(2024, 3, 4), date(2024, 3, 4), seed=1)
    write_csv(b, tmp_path / "x.csv")
    back = load_csv(tmp_path / "x.csv", "X", calendar)
    for a in ("ts", "o", "h", "l", "c", "v"):
        assert np.array_equal(getattr(b, a), getattr(back, a))


@pytest.mark.parametrize("text,message", [
    ("", "is empty"),
    (HEADER, "has a header but no rows"),
    ("timestamp,open,high,low,close\n" + GOOD[0], "lacks column volume"),
    ("when,open,high,low,close,volume\n" + GOOD[0], "lacks column timestamp"),
    (HEADER + GOOD[1] + GOOD[0], "is not sorted: line 3 (2024-03-04T14:30:00Z)"),
    (HEADER + GOOD[0] + GOOD[0] + GOOD[1], "duplicate rows: line 3 repeats 2024-03-04T14:30:00Z"),
    (HEADER + "2024-03-04T14:30:00,10,10.5,9.5,10.2,100\n", "has no timezone"),
    (HEADER + "yesterday,10,10.5,9.5,10.2,100\n", "is not ISO-8601"),
    (HEADER + "2024-03-04T14:30:00Z,ten,10.5,9.5,10.2,100\n", "line 2: open 'ten' is not a number"),
    (HEADER + "2024-03-04T14:30:00Z,10,10.5,9.5,nan,100\n", "must be a finite number"),
    (HEADER + "2024-03-04T14:30:30Z,10,10.5,9.5,10.2,100\n", "is not at a whole minute"),
    (HEADER + "2024-03-04T14:30:00Z,10,10.5,9.5,0,100\n", "has close 0.0; prices must be > 0"),
    (HEADER + "2024-03-04T14:30:00Z,10,9.0,9.5,10.2,100\n", "do not contain"),
    (HEADER + "2024-03-04T14:30:00Z,10,10.5,9.5,10.2,-1\n", "negative volume"),
    (HEADER + "2024-03-04T14:30:00Z,10,10.5,9.5\n", "line 2: close is empty or missing"),
    (HEADER + "2024-03-02T15:00:00Z,10,10.5,9.5,10.2,100\n",
     "every row is outside NYSE regular sessions: 1 row outside NYSE regular sessions "
     "(pre/after-hours, closed days, the afternoon of early closes), first line 2 "
     "(2024-03-02T15:00:00Z = Sat 2024-03-02 10:00 New York)"),
    (HEADER + "2024-03-04T14:30:00,10,10.5,9.5,10.2,100\n"
     "2024-03-04T14:31:00Z,10,10.5,9.5,10.2,100\n", "line 2: timestamp '2024-03-04T14:30:00' "
     "has no timezone"),
    (HEADER + GOOD[0] + "2024-03-04T14:31:00Z,10,10.5,9.5,10.2,1e999\n",
     "line 3: volume is 'inf'; it must be a finite number"),
    (HEADER + GOOD[0] + "\n" + "2024-03-04T14:32:00Z,10,10.5,9.5,x,1\n",
     "line 4: close 'x' is not a number"),
])
def test_bad_csv_is_refused_with_a_clear_message(tmp_path, calendar, text, message):
    with pytest.raises(BacktestError) as e:
        load_csv(_csv(tmp_path, text), "X", calendar)
    assert message in str(e.value)


def test_missing_file(tmp_path, calendar):
    with pytest.raises(BacktestError, match="cannot read CSV file .*nope.csv"):
        load_csv(tmp_path / "nope.csv", "X", calendar)


def test_select_keeps_history_before_start_and_cuts_after_end(ref_bars, calendar):
    bars, first = select(ref_bars, date(2024, 3, 5), date(2024, 3, 5), calendar, "f")
    assert first == 390 and len(bars) == 780  # day 1 is history, day 3 is cut
    bars, first = select(ref_bars, date(2024, 3, 2), None, calendar, "f")  # a Saturday
    assert first == 0 and len(bars) == 1170


@pytest.mark.parametrize("start,end,message", [
    (date(2024, 3, 1), None, "--start 2024-03-01 is before the data: f covers 2024-03-04 .. "
                             "2024-03-06"),
    (None, date(2024, 3, 7), "--end 2024-03-07 is after the data"),
    (date(2024, 3, 6), date(2024, 3, 5), "is after --end"),
    (date(2024, 3, 9), date(2024, 3, 10), "no NYSE session between"),
])
def test_dates_outside_the_data_are_refused(ref_bars, calendar, start, end, message):
    with pytest.raises(BacktestError, match=message):
        select(ref_bars, start, end, calendar, "f")


def test_bars_from_the_market_db_with_warm_up(data_dir, market_store, ref_bars):
    rows = [("REF", int(t), o, h, lo, c, int(v)) for t, o, h, lo, c, v in zip(
        ref_bars.ts, ref_bars.o, ref_bars.h, ref_bars.l, ref_bars.c, ref_bars.v, strict=True)]
    assert market_store.insert_rows(rows) == 1170
    spec = Spec("sma_crossover", "REF", market_db=data_dir / "market.db",
                start=date(2024, 3, 5), end=date(2024, 3, 5), warmup_days=5)
    bars, first = load_bars(spec)
    assert first == 390 and len(bars) == 780
    assert np.array_equal(bars.c, ref_bars.c[:780])
    with pytest.raises(BacktestError, match="has no bars for MSFT .*it has: REF"):
        load_bars(Spec("sma_crossover", "MSFT", market_db=data_dir / "market.db"))
    with pytest.raises(BacktestError, match="--end 2024-04-01 is after the data"):
        load_bars(Spec("sma_crossover", "REF", market_db=data_dir / "market.db",
                       end=date(2024, 4, 1)))
    with pytest.raises(BacktestError, match="no market DB at"):
        load_bars(Spec("sma_crossover", "REF", market_db=data_dir / "other.db"))
