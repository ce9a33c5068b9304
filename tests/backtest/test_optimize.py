"""Walk-forward optimisation: the best in-sample candidate per fold, judged on the sessions
after it, checked against direct runs of the same windows."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import pytest

from app.backtest.bars import write_csv
from app.backtest.errors import BacktestError
from app.backtest.optimize import make_folds, optimize, parse_space
from app.backtest.run import Spec, load_bars, run
from app.backtest.synthetic import random_walk
from app.cli import main


def test_parse_space():
    assert parse_space(["a=5:20:5", "b=30..50:10", "c=x,y", "d=0.5:1:0.25"]) == {
        "a": ["5", "10", "15", "20"], "b": ["30", "40", "50"], "c": ["x", "y"],
        "d": ["0.5", "0.75", "1.0"]}
    for bad in ("a=5:1:1", "a=1:5:0", "a", "a=1:x:1"):
        with pytest.raises(BacktestError):
            parse_space([bad])


@pytest.fixture
def twelve_days(tmp_path, calendar):
    bars = random_walk("RW", calendar, date(2024, 4, 1), date(2024, 4, 16), seed=11)
    path = tmp_path / "rw.csv"
    write_csv(bars, path)
    return path


def test_walk_forward_picks_in_sample_and_reports_out_of_sample(twelve_days):
    base = Spec("sma_crossover", "RW", csv=twelve_days, capital=10_000.0)
    data = load_bars(base)
    folds = make_folds(*data, train=4, test=3)
    assert [(len(range(*f.train)), len(range(*f.test))) for f in folds] == \
        [(4 * 390, 3 * 390), (4 * 390, 3 * 390), (4 * 390, 2 * 390)]  # 12 sessions
    space = parse_space(["sma_short=5:15:5", "sma_long=30:50:20"])
    rep = optimize(base, data, space, train=4, test=3, objective="total_return", workers=2)
    bars, _ = data
    level = 1.0
    for f, row in zip(folds, rep["folds"], strict=True):
        # The chosen candidate is the best of the direct in-sample runs ...
        scores = [run(replace(base, params=c), (bars.slice(0, f.train[1]), f.train[0]))
                  .metrics.total_return for c in rep["candidates"]]
        assert row["scores"] == pytest.approx(scores)
        assert row["params"] == rep["candidates"][scores.index(max(scores))]
        # ... and its out-of-sample figure is a direct run on the test sessions.
        oos = run(replace(base, params=row["params"]), (bars.slice(0, f.test[1]), f.test[0]))
        assert row["out_of_sample"]["total_return"] == pytest.approx(oos.metrics.total_return)
        level *= 1 + oos.metrics.total_return
    assert rep["out_of_sample"]["stitched_return"] == pytest.approx(level - 1)
    assert len(rep["curve"]["equity"]) == 8 * 390
    # The overfitting check: the in-sample mean against the stitched test sessions, both
    # annualised (returns over 4 and over 3 sessions are not comparable).
    stitched = (level ** (252 / 8) - 1) if level > 0 else None
    assert rep["out_of_sample"]["stitched"]["cagr"] == pytest.approx(stitched)
    assert rep["out_of_sample"]["stitched"]["total_return"] == pytest.approx(level - 1)
    i = sum(run(replace(base, params=row["params"]), (bars.slice(0, f.train[1]), f.train[0]))
            .metrics.cagr for f, row in zip(folds, rep["folds"], strict=True)) / len(folds)
    assert (rep["warning"] is not None) == (i > 0 and stitched < 0.5 * i)
    assert [row["test_sessions"] for row in rep["folds"]] == [3, 3, 2]


def test_optimize_cli_writes_the_report(capsys, tmp_path, twelve_days):
    out = tmp_path / "opt"
    rc = main(["backtest", "optimize", "sma_crossover", "RW", "--csv", str(twelve_days),
               "--param", "sma_short=5:15:10", "--param", "sma_long=30:40:10", "--train", "5",
               "--test", "2", "--objective", "sharpe", "--out", str(out), "--workers", "2"])
    text, err = capsys.readouterr()
    assert rc == 0, err
    assert "IS sharpe" in text and "stitched out-of-sample return" in text
    assert "fold 4 tests 1 session(s) only" in text  # 12 sessions: 5 + 3 x 2 + 1
    rep = json.loads((out / "optimize.json").read_text())
    assert len(rep["folds"]) == 4 and rep["objective"] == "sharpe"
    assert {p.name for p in out.iterdir()} >= {"optimize.json", "folds.csv", "oos_equity.png",
                                               "heatmap.png"}
    rc = main(["backtest", "optimize", "sma_crossover", "RW", "--csv", str(twelve_days),
               "--param", "nope=1:2:1", "--train", "5", "--test", "2"])
    assert rc == 2 and "nope" in capsys.readouterr().err
