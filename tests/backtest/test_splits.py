"""Backtests across a stock split: a CSV carries it (--split) or says it is adjusted
(--adjusted); market-DB bars adjusted by the corporate engine's own function give the same
run; and the algorithm's P&L is the one it would have had without the split."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

import db.corporate as dbc
from app.backtest.bars import Bars, write_csv
from app.backtest.cli import main
from app.backtest.run import Spec, run
from app.backtest.synthetic import random_walk

EX = "2024-06-10"
TICKER = "SPL"


@pytest.fixture
def truth(calendar) -> Bars:
    """What the stock did, in post-split terms (the split-adjusted series)."""
    return random_walk(TICKER, calendar, date(2024, 6, 3), date(2024, 6, 14), seed=11,
                       start_price=20.0)


def _raw(bars: Bars, ratio: float) -> Bars:
    """The same market as traded: before the ex-date prices were ``ratio`` times higher."""
    k = int(np.searchsorted(bars.ts, dbc.ex_epoch(EX)))
    o, h, lo, c, v = (a.copy() for a in (bars.o, bars.h, bars.l, bars.c, bars.v))
    for a in (o, h, lo, c):
        a[:k] *= ratio
    v[:k] = np.floor(v[:k] / ratio)
    return Bars.from_arrays(TICKER, bars.ts, o, h, lo, c, v)


def _trades(r):
    return [(f["i"], f["type"], f["shares"]) for f in r.fills]


@pytest.mark.parametrize("plugin,params", [("buy_and_hold", {}),
                                          ("sma_crossover", {"sma_short": 10, "sma_long": 40})])
def test_pnl_is_unchanged_by_a_split_in_the_csv(tmp_path, truth, plugin, params):
    write_csv(truth, tmp_path / "adjusted.csv")
    write_csv(_raw(truth, 10.0), tmp_path / "raw.csv")
    base = Spec(plugin=plugin, ticker=TICKER, capital=10_000.0, params=params,
                start=date(2024, 6, 4))
    adjusted = run(Spec(**{**base.__dict__, "csv": tmp_path / "adjusted.csv", "adjusted": True}))
    split = run(Spec(**{**base.__dict__, "csv": tmp_path / "raw.csv",
                        "splits": ((TICKER, EX, 10.0, 1.0),)}))
    unsplit = run(Spec(**{**base.__dict__, "csv": tmp_path / "raw.csv"}))

    assert len(split.fills) >= 1 and split.errors == 0
    assert _trades(split) == _trades(adjusted)
    assert [f["price"] for f in split.fills] == pytest.approx(
        [f["price"] for f in adjusted.fills], rel=1e-12)
    assert split.equity == pytest.approx(adjusted.equity, rel=1e-12)
    assert split.metrics.final_equity == pytest.approx(adjusted.metrics.final_equity, rel=1e-12)
    assert any("10-for-1 split on 2024-06-10" in p["reason"] for p in split.problems)
    # Without the split the raw data reads as a 90% crash: the report says what to give.
    assert any(f"--split {TICKER}:{EX}:10" in p["reason"] for p in unsplit.problems)
    if plugin == "buy_and_hold":
        assert unsplit.metrics.final_equity < 0.2 * adjusted.metrics.final_equity


def test_market_db_adjusted_by_the_engine_equals_the_csv_with_split(tmp_path, truth,
                                                                    market_store, data_dir):
    raw = _raw(truth, 4.0)
    write_csv(raw, tmp_path / "raw.csv")
    market_store.insert_rows(
        (TICKER, int(t), float(o), float(h), float(lo), float(c), int(v))
        for t, o, h, lo, c, v in zip(raw.ts, raw.o, raw.h, raw.l, raw.c, raw.v, strict=True))
    # What the corporate engine does on the ex-date (app/engine/corporate.py _apply_split).
    assert dbc.adjust_bars(market_store, "sim-forward_split-SPL-2024-06-10", TICKER,
                           dbc.ex_epoch(EX), 1 / 4.0) > 0
    split = (TICKER, EX, 4.0, 1.0)
    params = {"sma_short": 10, "sma_long": 40}
    from_csv = run(Spec(plugin="sma_crossover", ticker=TICKER, params=params,
                        start=date(2024, 6, 4), csv=tmp_path / "raw.csv", splits=(split,)))
    from_db = run(Spec(plugin="sma_crossover", ticker=TICKER, params=params,
                       start=date(2024, 6, 4), market_db=data_dir / "market.db"))
    # The same split given again is not applied twice to the DB's adjusted bars.
    again = run(Spec(plugin="sma_crossover", ticker=TICKER, params=params,
                     start=date(2024, 6, 4), market_db=data_dir / "market.db",
                     splits=(split,)))
    assert len(from_db.fills) > 3
    for other in (from_db, again):
        assert [(f["i"], f["type"], f["shares"], f["price"]) for f in other.fills] == \
               [(f["i"], f["type"], f["shares"], f["price"]) for f in from_csv.fills]
        assert other.equity == pytest.approx(from_csv.equity, abs=1e-9)
    assert any("adjusted for it already" in p["reason"] for p in again.problems)


def test_cli_split_and_adjusted(tmp_path, truth, capsys):
    write_csv(_raw(truth, 2.0), tmp_path / "raw.csv")
    common = ["buy_and_hold", TICKER, "--csv", str(tmp_path / "raw.csv"), "--no-charts",
              "--out", str(tmp_path / "out")]
    assert main(["backtest", *common, "--split", f"{TICKER}:{EX}:2"]) == 0
    assert main(["backtest", *common, "--split", f"{TICKER}:{EX}:2", "--adjusted"]) == 2
    assert "not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["backtest", *common, "--split", f"{TICKER}:June:2"])
