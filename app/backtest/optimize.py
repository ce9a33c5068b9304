"""Parameter optimisation with walk-forward: choose in-sample, judge out-of-sample.

    autotrader backtest optimize PLUGIN TICKER --param sma_short=5:40:5 --param sma_long=30:200:10
        --train 60 --test 20 [--objective sharpe] [--search grid|random --trials N --seed S]

The sessions of the data are cut into folds: fold k trains on sessions [kM, kM+N) and tests on
the M sessions after them (N = --train, M = --test). On each fold every candidate (the grid,
or ``--trials`` random points of it) runs on the training sessions; the best by the objective
then runs on the test sessions, which it never saw. The out-of-sample runs, stitched end to
end, are the honest figure; the report puts them beside the in-sample ones and warns when the
two diverge (an overfitted choice). Bars before a window stay readable as history, as in any
backtest; each window starts flat with the full capital. All runs go through ``run_jobs``:
isolated child processes, locally or on a Dask cluster (``--dask``).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from app.backtest.bars import Bars
from app.backtest.errors import BacktestError
from app.backtest.report import charts_unavailable
from app.backtest.run import Spec
from app.backtest.sweep import Job, combinations, plugin_source, run_jobs
from db.timeutil import iso_z, to_epoch

logger = logging.getLogger(__name__)

OBJECTIVES = ("sharpe", "sortino", "total_return", "cagr", "max_drawdown")
DIVERGENCE = 0.5  # warn when out-of-sample is below half the in-sample objective


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        x = float(text)
    except ValueError:
        raise BacktestError(f"{text!r} is not a number") from None
    if not math.isfinite(x):
        raise BacktestError(f"{text!r} is not a finite number")
    return x


def parse_space(items: list[str]) -> dict[str, list[str]]:
    """``name=a:b:step`` (or ``a..b:step``; both ends included) or ``name=v1,v2``."""
    space: dict[str, list[str]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise BacktestError(f"--param {item!r}: write it as name=start:stop:step or "
                                "name=v1,v2")
        rng = value.replace("..", ":").split(":")
        if len(rng) == 3 and "," not in value:
            try:
                lo, hi, step = (_number(x) for x in rng)
            except BacktestError as e:
                raise BacktestError(f"--param {item!r}: {e}") from None
            if not step > 0 or hi < lo:
                raise BacktestError(f"--param {item!r}: needs start <= stop and a step > 0")
            n = int(math.floor((hi - lo) / step + 1e-9)) + 1
            if n > 10_000:
                raise BacktestError(f"--param {item!r}: {n} values; use a larger step")
            vals = [lo + k * step for k in range(n)]
            as_int = all(isinstance(x, int) for x in (lo, hi, step))
            space[name] = [str(int(v)) if as_int else repr(round(float(v), 10)) for v in vals]
        else:
            space[name] = [v.strip() for v in value.split(",") if v.strip()]
    return space


def session_starts(bars: Bars, first: int) -> list[int]:
    """Index of the first bar of each session from ``first`` on."""
    day = (bars.ts[first:] - 4 * 3600) // 86400  # UTC days; sessions never cross one
    starts = np.flatnonzero(np.diff(day)) + 1
    return [first, *(first + starts).tolist()]


@dataclass(frozen=True)
class Fold:
    k: int
    train: tuple[int, int]  # bar indices [lo, hi)
    test: tuple[int, int]


def make_folds(bars: Bars, first: int, train: int, test: int) -> list[Fold]:
    if train < 1 or test < 1:
        raise BacktestError("--train and --test must be at least 1 session")
    starts = session_starts(bars, first) + [len(bars)]
    sessions = len(starts) - 1
    folds = []
    k = 0
    while k * test + train < sessions:
        a = k * test
        b = a + train
        c = min(b + test, sessions)
        folds.append(Fold(k, (starts[a], starts[b]), (starts[b], starts[c])))
        k += 1
    if not folds:
        raise BacktestError(f"the data has {sessions} sessions: too few for --train {train} "
                            f"plus at least one test session")
    return folds


def candidates(space: dict[str, list[str]], search: str, trials: int | None,
               seed: int) -> list[dict[str, str]]:
    grid = combinations(space)
    if search == "grid":
        return grid
    if search != "random":
        raise BacktestError(f"--search must be grid, random or optuna, got {search!r}")
    n = min(trials or 50, len(grid))
    return random.Random(seed).sample(grid, n)


def _objective(report: dict[str, Any], name: str) -> float:
    v = report["metrics"].get(name)
    return -math.inf if v is None or not math.isfinite(v) else float(v)


def optimize(base: Spec, data: tuple[Bars, int], space: dict[str, list[str]], *, train: int,
             test: int, objective: str = "sharpe", search: str = "grid",
             trials: int | None = None, seed: int = 0, workers: int | None = None,
             dask: str | None = None) -> dict[str, Any]:
    if objective not in OBJECTIVES:
        raise BacktestError(f"--objective must be one of {', '.join(OBJECTIVES)}")
    bars, first = data
    folds = make_folds(bars, first, train, test)
    source = plugin_source(base)
    if search == "optuna":
        _optuna_ready()
    client = None
    if dask is not None:  # one cluster for every batch of runs
        from app.backtest.pool import dask_client

        client = dask_client(dask)
    try:
        runner = _Runner(base, bars, source, objective, workers, client)
        if search == "optuna":
            searched = [runner.optuna(f, space, trials or 50, seed + f.k) for f in folds]
            cands: list[dict[str, str]] = []  # each fold tried its own points
        else:
            cands = candidates(space, search, trials, seed)
            searched = runner.everywhere(folds, cands)
        chosen = [(int(np.argmax(scores)), scores) for _, scores, _ in searched]
        tests = [Job(replace(base, params=tried[best]), (bars.slice(0, f.test[1]), f.test[0]),
                     None, False, source, keep_curve=True)
                 for f, (tried, _, _), (best, _) in zip(folds, searched, chosen, strict=True)]
        outs = runner.run(tests)
    finally:
        if client is not None:
            from app.backtest.pool import close_client

            close_client(client)
    fold_rows = []
    curve_ts: list[np.ndarray] = []
    curve_eq: list[np.ndarray] = []
    level = 1.0
    for f, (tried, _, reports), (best, scores), r in zip(folds, searched, chosen, outs,
                                                          strict=True):
        ins_rep = reports[best]
        oos_rep = r.get("report", {})
        if not r.get("ok"):
            raise BacktestError(f"fold {f.k + 1}: the out-of-sample run failed: {r['error']}")
        eq = np.asarray(r["equity"], dtype=np.float64) / base.capital
        curve_ts.append(np.asarray(r["ts"]))
        curve_eq.append(level * eq)
        level *= float(eq[-1])
        fold_rows.append({
            "fold": f.k + 1, "params": tried[best],
            "train": [iso_z(int(bars.ts[f.train[0]])), iso_z(int(bars.ts[f.train[1] - 1]))],
            "test": [iso_z(int(bars.ts[f.test[0]])), iso_z(int(bars.ts[f.test[1] - 1]))],
            "in_sample": {objective: _finite(scores[best]),
                          "total_return": ins_rep.get("metrics", {}).get("total_return")},
            "out_of_sample": {objective: oos_rep["metrics"].get(objective),
                              "total_return": oos_rep["metrics"].get("total_return")},
            "test_sessions": len(session_starts(bars.slice(0, f.test[1]), f.test[0])),
            "stopped": r.get("stopped"),
            "scores": [_finite(s) for s in scores],
            "tried": tried if search == "optuna" else None,
        })
    is_obj = _mean([row["in_sample"][objective] for row in fold_rows])
    oos_obj = _mean([row["out_of_sample"][objective] for row in fold_rows])
    is_ret = _mean([row["in_sample"]["total_return"] for row in fold_rows])
    oos_ret = _mean([row["out_of_sample"]["total_return"] for row in fold_rows])
    ts_all = np.concatenate(curve_ts)
    eq_all = np.concatenate(curve_eq) * base.capital
    stitched = _stitched_metrics(ts_all, eq_all, base.capital)
    # The overfitting check compares like with like: a mean of fold figures would weigh a
    # short last fold (a few sessions, a wild Sharpe) like a full one, and returns over
    # --train sessions are not comparable with returns over --test sessions; so the
    # in-sample mean is set against the stitched out-of-sample curve's own figure, annualised
    # (CAGR) where the objective is a return.
    judged = "cagr" if objective == "total_return" else objective
    is_judged = _mean([_finite(reports[best].get("metrics", {}).get(judged))
                       for (_, _, reports), (best, _) in zip(searched, chosen, strict=True)])
    oos_judged = _finite(stitched.get(judged))
    warning = None
    if is_judged is not None and oos_judged is not None and is_judged > 0 and \
            oos_judged < DIVERGENCE * is_judged:
        warning = (f"out-of-sample {judged} {oos_judged:.3g} (the stitched test sessions) is "
                   f"far below the in-sample mean {is_judged:.3g}: the chosen parameters fit "
                   "the training data, not the market (overfitting); trust the "
                   "out-of-sample figures")
    return {
        "plugin": base.plugin, "ticker": base.ticker, "objective": objective,
        "search": search, "candidates": cands, "space": space, "train_sessions": train,
        "test_sessions": test,
        "folds": fold_rows,
        "in_sample": {objective: is_obj, "mean_return": is_ret},
        "out_of_sample": {objective: oos_obj, "mean_return": oos_ret,
                          "stitched_return": level - 1.0,
                          "stitched": {k: _finite(stitched.get(k)) for k in OBJECTIVES}},
        "warning": warning,
        "curve": {"ts": ts_all.tolist(), "equity": eq_all.tolist()},
    }


def _stitched_metrics(ts: np.ndarray, equity: np.ndarray, capital: float) -> dict[str, Any]:
    """The figures of the stitched out-of-sample curve (the test sessions end to end)."""
    from app.backtest.metrics import compute
    from app.backtest.result import day_ids_for

    m, _ = compute(ts=ts, close=equity, equity=equity, position=np.zeros_like(equity),
                   day_ids=day_ids_for(ts), fills=[], initial_capital=capital)
    return m.as_dict()


Searched = tuple[list[dict[str, str]], list[float], list[dict[str, Any]]]


class _Runner:
    """The in-sample runs of the search: (points, scores, reports) per fold."""

    def __init__(self, base: Spec, bars: Bars, source: tuple[str, str] | None, objective: str,
                 workers: int | None, client: Any) -> None:
        self.base, self.bars, self.source, self.objective = base, bars, source, objective
        self.workers, self.client = workers, client

    def run(self, jobs: list[Job]) -> list[dict[str, Any]]:
        return run_jobs(jobs, workers=self.workers, client=self.client)

    def _job(self, f: Fold, params: dict[str, str]) -> Job:
        return Job(replace(self.base, params=params),
                   (self.bars.slice(0, f.train[1]), f.train[0]), None, False, self.source)

    def _score(self, r: dict[str, Any]) -> float:
        return (_objective(r["report"], self.objective) if r.get("ok") and not r.get("stopped")
                else -math.inf)

    def everywhere(self, folds: list[Fold], cands: list[dict[str, str]]) -> list[Searched]:
        """Every candidate on every fold, all in one batch."""
        rows = self.run([self._job(f, c) for f in folds for c in cands])
        n = len(cands)
        return [(cands, [self._score(r) for r in rows[k * n:(k + 1) * n]],
                 [r.get("report", {}) for r in rows[k * n:(k + 1) * n]])
                for k in range(len(folds))]

    def optuna(self, f: Fold, space: dict[str, list[str]], trials: int, seed: int) -> Searched:
        from app.backtest.optuna_search import search

        reports: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}

        def batch(points: list[dict[str, str]]) -> list[float]:
            rows = self.run([self._job(f, p) for p in points])
            for p, r in zip(points, rows, strict=True):
                reports[tuple(p.items())] = r.get("report", {})
            return [self._score(r) for r in rows]

        size = 2 * max(1, self.workers or os.cpu_count() or 1)
        tried, scores = search(batch, space, trials=trials, seed=seed, batch_size=size)
        return tried, scores, [reports[tuple(p.items())] for p in tried]


def _optuna_ready() -> None:
    from app.backtest.optuna_search import distributions

    distributions({})  # raises the install hint when optuna is missing


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _mean(xs: list[float | None]) -> float | None:
    vals = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.mean(vals)) if vals else None


def format_report(rep: dict[str, Any]) -> str:
    obj = rep["objective"]

    def f(x: float | None, pct: bool = False) -> str:
        return "n/a" if x is None else (f"{x:+.2%}" if pct else f"{x:.3f}")

    lines = [f"{'fold':>4}  {'test period':<23}  {'params':<30} {'IS ' + obj:>12} "
             f"{'OOS ' + obj:>12} {'IS return':>10} {'OOS return':>10}"]
    short = []
    for r in rep["folds"]:
        tag = " ".join(f"{k}={v}" for k, v in r["params"].items()) or "-"
        mark = ""
        if r.get("test_sessions", rep["test_sessions"]) < rep["test_sessions"]:
            mark = " *"
            short.append(f"fold {r['fold']} tests {r['test_sessions']} session(s) only "
                         "(the data ends)")
        lines.append(f"{r['fold']:>4}  {r['test'][0][:10]} .. {r['test'][1][:10]}  {tag:<30} "
                     f"{f(r['in_sample'][obj]):>12} {f(r['out_of_sample'][obj]):>12}"
                     f"{mark:<2}{f(r['in_sample']['total_return'], True):>9} "
                     f"{f(r['out_of_sample']['total_return'], True):>10}")
    i, o = rep["in_sample"], rep["out_of_sample"]
    lines.append(f"mean  in-sample {obj} {f(i[obj])} / return {f(i['mean_return'], True)};  "
                 f"out-of-sample {obj} {f(o[obj])} / return {f(o['mean_return'], True)}")
    st = o.get("stitched", {})
    lines.append(f"stitched out-of-sample return {f(o['stitched_return'], True)}, "
                 f"{obj} {f(st.get(obj), obj in ('total_return', 'cagr', 'max_drawdown'))} "
                 "(the test sessions end to end: the honest figure)")
    lines += [f"  * {s}" for s in short]
    if rep["warning"]:
        lines.append(f"WARNING: {rep['warning']}")
    return "\n".join(lines)


def write_report(rep: dict[str, Any], out: Path, charts: bool = True) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "optimize.json", out / "folds.csv"]
    paths[0].write_text(json.dumps(rep, indent=2) + "\n", encoding="utf-8")
    obj = rep["objective"]
    with paths[1].open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("fold", "train_start", "train_end", "test_start", "test_end", "params",
                    f"in_sample_{obj}", f"out_of_sample_{obj}", "in_sample_return",
                    "out_of_sample_return"))
        for r in rep["folds"]:
            w.writerow((r["fold"], *r["train"], *r["test"],
                        " ".join(f"{k}={v}" for k, v in r["params"].items()),
                        r["in_sample"][obj], r["out_of_sample"][obj],
                        r["in_sample"]["total_return"], r["out_of_sample"]["total_return"]))
    if charts and charts_unavailable() is None:
        paths += _charts(rep, out)
    return paths


def _charts(rep: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    fig, ax = plt.subplots(figsize=(10, 4))
    eq = rep["curve"]["equity"]
    ax.plot(range(len(eq)), eq, lw=1)
    ts = rep["curve"]["ts"]
    for r in rep["folds"][1:]:  # where each test window starts
        at = int(np.searchsorted(ts, to_epoch(r["test"][0])))
        ax.axvline(at, color="grey", lw=0.6, ls=":")
        ax.text(at, 1, f" {r['fold']}", transform=ax.get_xaxis_transform(), va="top",
                fontsize=8, color="grey")
    ax.set_title(f"{rep['plugin']} {rep['ticker']}: out-of-sample equity, "
                 f"{len(rep['folds'])} folds stitched")
    ax.set_xlabel("bar (test sessions only)")
    ax.set_ylabel("equity")
    fig.tight_layout()
    fig.savefig(out / "oos_equity.png", dpi=100)
    plt.close(fig)
    made.append(out / "oos_equity.png")
    from app.backtest.charts import search_heatmap

    heat = search_heatmap(rep, out / "heatmap.png")  # grid, random or Optuna
    if heat is not None:
        made.append(heat)
    return made
