"""Walk-forward optimisation: the best in-sample candidate per fold, judged on the sessions
after it, checked against direct runs of the same windows."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import date

import numpy as np
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


def test_optuna_search_learns_and_repeats_with_its_seed():
    """TPE over stepped integer ranges, batch by batch: it finds the top of a smooth score
    far faster than the grid would, never runs a point twice, and a seed repeats it."""
    pytest.importorskip("optuna")
    from app.backtest.optuna_search import distributions, search

    space = parse_space(["sma_short=2:30:1", "sma_long=20:120:2"])  # 1,479 grid points
    d = distributions(space)
    assert (d["sma_short"].low, d["sma_short"].high, d["sma_short"].step) == (2, 30, 1)
    assert type(distributions(parse_space(["w=0.5:1:0.25"]))["w"]).__name__ == \
        "FloatDistribution"
    assert type(distributions({"x": ["a", "b"]})["x"]).__name__ == "CategoricalDistribution"
    ran: list[tuple] = []

    def batch(points):
        ran.extend(tuple(p.items()) for p in points)
        return [-(int(p["sma_short"]) - 12) ** 2 - (int(p["sma_long"]) - 60) ** 2 / 25
                for p in points]

    tried, scores = search(batch, space, trials=60, seed=7, batch_size=4)
    assert len(tried) == 60 and len(set(ran)) == len(ran)  # asked twice: not run twice
    assert all(p["sma_short"] in space["sma_short"] and p["sma_long"] in space["sma_long"]
               for p in tried)
    assert max(scores) > -10  # near (12, 60); random points average about -140
    ran.clear()
    assert search(batch, space, trials=60, seed=7, batch_size=4) == (tried, scores)


def test_optimize_with_optuna_picks_the_best_point_it_tried(twelve_days):
    pytest.importorskip("optuna")
    space = parse_space(["sma_short=2:30:1", "sma_long=20:120:2"])
    base = Spec("sma_crossover", "RW", csv=twelve_days, capital=10_000.0)
    data = load_bars(base)
    rep = optimize(base, data, space, train=4, test=3, objective="total_return",
                   search="optuna", trials=4, seed=3, workers=2)
    bars, _ = data
    assert rep["candidates"] == [] and len(rep["folds"]) == 3
    for row in rep["folds"]:
        assert len(row["tried"]) == 4 and len(row["scores"]) == 4
        best = max(range(4), key=lambda k: -1e9 if row["scores"][k] is None
                   else row["scores"][k])
        assert row["params"] == row["tried"][best]
        assert row["in_sample"]["total_return"] == pytest.approx(row["scores"][best])
    f = make_folds(*data, train=4, test=3)[0]
    direct = run(replace(base, params=rep["folds"][0]["params"]),
                 (bars.slice(0, f.train[1]), f.train[0])).metrics.total_return
    assert rep["folds"][0]["in_sample"]["total_return"] == pytest.approx(direct)


def test_optuna_missing_is_one_line(capsys, twelve_days, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # as where it is not installed
    rc = main(["backtest", "optimize", "sma_crossover", "RW", "--csv", str(twelve_days),
               "--param", "sma_short=5:15:5", "--train", "5", "--test", "2", "--search",
               "optuna"])
    assert rc == 2
    assert "--search optuna needs the 'optuna' package: pip install 'autotrader[research]'" \
        in capsys.readouterr().err


def test_optuna_search_gets_a_heatmap_of_its_trials(capsys, tmp_path, twelve_days):
    """``--search optuna`` writes heatmap.png like the grid: each cell the mean in-sample
    objective of the trials at that pair of values (recomputed here from optimize.json), the
    cells never tried empty, every fold's choice among the tried cells."""
    pytest.importorskip("optuna")
    from PIL import Image

    from app.backtest.charts import heatmap_grid, importance, search_trials

    out = tmp_path / "opt"
    rc = main(["backtest", "optimize", "sma_crossover", "RW", "--csv", str(twelve_days),
               "--param", "sma_short=2:20:2", "--param", "sma_long=20:60:5", "--train", "4",
               "--test", "3", "--objective", "total_return", "--search", "optuna",
               "--trials", "8", "--seed", "5", "--out", str(out), "--workers", "2"])
    assert rc == 0, capsys.readouterr().err
    rep = json.loads((out / "optimize.json").read_text())
    assert rep["space"]["sma_short"][0] == "2" and rep["candidates"] == []
    g = heatmap_grid(rep)
    assert g is not None and g["names"] == ["sma_short", "sma_long"]
    assert g["x"] == rep["space"]["sma_short"] and g["y"] == rep["space"]["sma_long"]
    assert g["trials"] == 8 * len(rep["folds"])
    cells: dict[tuple[str, str], list[float]] = {}
    for row in rep["folds"]:
        for p, s in zip(row["tried"], row["scores"], strict=True):
            if s is not None:
                cells.setdefault((p["sma_short"], p["sma_long"]), []).append(s)
    assert int(g["count"].sum()) == sum(len(v) for v in cells.values())
    for i, y in enumerate(g["y"]):
        for j, x in enumerate(g["x"]):
            if (x, y) in cells:
                assert g["mean"][i, j] == pytest.approx(np.mean(cells[x, y]))
            else:
                assert np.isnan(g["mean"][i, j]) and g["count"][i, j] == 0
    for j, i, _ in g["chosen"]:  # a fold's choice is a point it tried
        assert g["count"][i, j] > 0
    assert set(importance(search_trials(rep))) == {"sma_short", "sma_long"}
    img = Image.open(out / "heatmap.png")
    assert img.size == (800, 550)
    pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 20  # drawn, not blank


def test_heatmap_picks_the_two_parameters_that_matter():
    """With three parameters the heatmap shows the two the score depends on (the third one
    averaged over); each parameter's share of the variance is in [0, 1]."""
    from app.backtest.charts import heatmap_grid

    tried = [{"a": str(a), "b": str(b), "c": str(c)}
             for a in range(3) for b in range(3) for c in range(3)]
    scores = [10.0 * int(p["c"]) + int(p["a"]) + 0.01 * int(p["b"]) for p in tried]
    rep = {"search": "random", "objective": "sharpe", "candidates": tried,
           "folds": [{"fold": 1, "scores": scores, "params": tried[-1]}]}
    g = heatmap_grid(rep)
    assert g is not None and g["names"] == ["c", "a"]
    assert all(0.0 <= v <= 1.0 for v in g["importance"].values())
    assert g["mean"][2, 1] == pytest.approx(np.mean([10 + 2 + 0.01 * b for b in range(3)]))
