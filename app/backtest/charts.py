"""PNG charts of a run (matplotlib, Agg backend: no display, no Qt).

The x axis is the bar number, labelled with dates, so nights and weekends take no room.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: the backtest runs headless and without Qt
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: E402

from app.backtest.result import RunResult  # noqa: E402
from db.calendar import EXCHANGE_TZ  # noqa: E402

logger = logging.getLogger(__name__)


def _date_axis(ax, ts: np.ndarray) -> None:  # noqa: ANN001
    n = ts.shape[0]
    span_days = (int(ts[-1]) - int(ts[0])) / 86400 if n else 0

    def fmt(x: float, _pos: int) -> str:
        i = int(round(x))
        if i < 0 or i >= n:
            return ""
        local = datetime.fromtimestamp(int(ts[i]), UTC).astimezone(EXCHANGE_TZ)
        return local.strftime("%Y-%m-%d" if span_days > 15 else "%m-%d %H:%M")

    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(fmt))


def price_chart(result: RunResult, path: Path) -> Path:
    """Close price with buy (green up) and sell (red down) markers at the fill prices."""
    ts, close = result.ts, result.close
    fig, ax = plt.subplots(figsize=(12, 5), dpi=100)
    # Thousands of fills over a year would bury the price line under full-size markers.
    size = max(4.0, min(28.0, 8000.0 / max(1, len(result.fills))))
    ax.plot(np.arange(ts.shape[0]), close, color="#4a6fa5", linewidth=0.7, label="close")
    for side, marker, color in (("buy", "^", "#1a9850"), ("sell", "v", "#d73027")):
        mine = [f for f in result.fills if f["type"] == side]
        # A fill at a minute without a bar is drawn at the next bar.
        xs = np.minimum(np.searchsorted(ts, [f["ts"] for f in mine]), max(0, len(ts) - 1))
        ys = [f["price"] for f in mine]
        ax.scatter(xs, ys, marker=marker, color=color, s=size, zorder=3,
                   label=f"{side} ({len(xs)})", edgecolors="black",
                   linewidths=0.3 if size > 10 else 0)
    ax.set_title(f"{result.ticker} — {_name(result)}")
    ax.set_ylabel("price")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8, markerscale=(28.0 / size) ** 0.5)
    _date_axis(ax, ts)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def equity_chart(result: RunResult, path: Path) -> Path:
    """Equity curve (with buy-and-hold for comparison) above the drawdown."""
    ts, eq = result.ts, result.equity
    x = np.arange(ts.shape[0])
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 6), dpi=100, sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    cap = result.initial_capital
    ax1.plot(x, eq, color="#2b6cb0", linewidth=0.9, label="strategy")
    if ts.shape[0]:
        ax1.plot(x, cap * result.close / result.close[0], color="#999999", linewidth=0.7,
                 label="buy and hold")
    ax1.axhline(cap, color="black", linewidth=0.5, linestyle=":")
    m = result.metrics
    title = f"{result.ticker} — {_name(result)}: equity"
    if m is not None:
        title += f" (return {m.total_return:+.2%}, max drawdown {m.max_drawdown:.2%})"
    ax1.set_title(title)
    ax1.set_ylabel("value")
    ax1.grid(alpha=0.3)
    ax1.legend(loc="best", fontsize=8)
    peaks = np.maximum.accumulate(np.maximum(eq, cap)) if ts.shape[0] else eq
    dd = eq / peaks - 1.0 if ts.shape[0] else eq
    ax2.fill_between(x, dd * 100, 0, color="#d73027", alpha=0.5, linewidth=0)
    ax2.set_ylabel("drawdown %")
    ax2.grid(alpha=0.3)
    _date_axis(ax2, ts)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _name(result: RunResult) -> str:
    return " ".join([result.plugin, *(f"{k}={v}" for k, v in result.params.items())])


def _num_key(v: str) -> tuple[int, float, str]:
    try:
        return (0, float(v), v)
    except ValueError:
        return (1, 0.0, v)


def search_trials(rep: dict[str, Any]) -> list[tuple[dict[str, str], float | None]]:
    """Every in-sample run of an optimisation report, over all folds: (point, score); a grid
    or random search tried the same candidates on each fold, an Optuna search its own."""
    out: list[tuple[dict[str, str], float | None]] = []
    for row in rep["folds"]:
        points = row.get("tried") or rep["candidates"]
        out += list(zip(points, row["scores"], strict=True))
    return out


def importance(trials: list[tuple[dict[str, str], float | None]]) -> dict[str, float]:
    """Each parameter's share of the score's variance explained by its value alone
    (correlation ratio, eta squared; 0..1): which parameters the objective depends on."""
    done = [(p, s) for p, s in trials if s is not None and np.isfinite(s)]
    if len(done) < 2:
        return {}
    scores = np.array([s for _, s in done], dtype=np.float64)
    total = float(((scores - scores.mean()) ** 2).sum())
    out: dict[str, float] = {}
    for name in done[0][0]:
        groups: dict[str, list[float]] = {}
        for p, s in done:
            groups.setdefault(p[name], []).append(float(s))  # type: ignore[arg-type]
        between = sum(len(g) * (float(np.mean(g)) - scores.mean()) ** 2
                      for g in groups.values())
        out[name] = between / total if total > 0 else 0.0
    return out


def heatmap_grid(rep: dict[str, Any]) -> dict[str, Any] | None:
    """The objective over two parameters: the mean in-sample score of every trial at each pair
    of values (the other parameters, if any, averaged over), the count of finished trials
    per cell, and each fold's chosen pair. With more than two parameters, the two the score
    depends on most (``importance``). None with fewer than two parameters."""
    trials = search_trials(rep)
    if not trials or len(trials[0][0]) < 2:
        return None
    imp = importance(trials)
    names = list(trials[0][0])
    if len(names) > 2:
        names = sorted(names, key=lambda n: -imp.get(n, 0.0))[:2]
    space = rep.get("space") or {}
    axes = [sorted(set(space.get(n) or []) | {p[n] for p, _ in trials}, key=_num_key)
            for n in names]
    xs, ys = axes
    total = np.zeros((len(ys), len(xs)))
    count = np.zeros((len(ys), len(xs)), dtype=np.int64)
    for p, s in trials:
        if s is None or not np.isfinite(s):
            continue
        i, j = ys.index(p[names[1]]), xs.index(p[names[0]])
        total[i, j] += s
        count[i, j] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    chosen = [(xs.index(r["params"][names[0]]), ys.index(r["params"][names[1]]), r["fold"])
              for r in rep["folds"]]
    return {"names": names, "x": xs, "y": ys, "mean": mean, "count": count,
            "chosen": chosen, "importance": imp, "trials": len(trials)}


def _ticks(ax: Any, values: list[str], axis: str) -> None:
    step = max(1, int(np.ceil(len(values) / 12)))  # at most about 12 labels an axis
    at = list(range(0, len(values), step))
    if axis == "x":
        ax.set_xticks(at, [values[k] for k in at])
    else:
        ax.set_yticks(at, [values[k] for k in at])


def search_heatmap(rep: dict[str, Any], path: Path) -> Path | None:
    """heatmap.png of an optimisation (grid, random or Optuna): the mean in-sample objective
    per pair of values, cells never tried in grey, each fold's choice marked with its number;
    for a sampled search, the number of trials in each cell. None when there is no pair."""
    g = heatmap_grid(rep)
    if g is None:
        return None
    xs, ys, mean = g["x"], g["y"], g["mean"]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(mean), origin="lower", aspect="auto", cmap=cmap,
                   interpolation="nearest")
    sampled = rep["search"] != "grid"
    if sampled and mean.size <= 400:
        lo, hi = float(np.nanmin(mean)), float(np.nanmax(mean))
        for i, j in zip(*np.nonzero(g["count"]), strict=True):
            light = hi > lo and (mean[i, j] - lo) / (hi - lo) > 0.6  # viridis' yellow end
            ax.text(j, i, str(g["count"][i, j]), ha="center", va="center", fontsize=6,
                    color="black" if light else "white")
    folds: dict[tuple[int, int], list[str]] = {}
    for j, i, fold in g["chosen"]:  # folds that chose the same cell share one label
        folds.setdefault((j, i), []).append(str(fold))
    for (j, i), which in folds.items():
        ax.scatter([j], [i], marker="*", s=140, color="#ff3b30", edgecolors="white",
                   linewidths=0.8, zorder=3)
        below = i == len(ys) - 1  # the top row: the numbers go under the star
        right = j == len(xs) - 1  # the last column: left of the star
        ax.annotate(",".join(which), (j, i), xytext=(-6 if right else 6, -11 if below else 4),
                    textcoords="offset points", fontsize=8, color="#ff3b30", weight="bold",
                    ha="right" if right else "left")
    _ticks(ax, xs, "x")
    _ticks(ax, ys, "y")
    ax.set_xlabel(g["names"][0])
    ax.set_ylabel(g["names"][1])
    tried = int((g["count"] > 0).sum())
    title = f"mean in-sample {rep['objective']} over the folds ({rep['search']}"
    title += f": {g['trials']} trials, {tried} of {mean.size} cells)" if sampled else ")"
    imp = g["importance"]
    if len(imp) > 2 or sampled:
        title += "\nvariance explained: " + ", ".join(
            f"{n} {v:.0%}" for n, v in sorted(imp.items(), key=lambda kv: -kv[1]))
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax)
    ax.text(1.0, -0.12, "* chosen per fold (number); grey: not tried", transform=ax.transAxes,
            ha="right", va="top", fontsize=7, color="#555555")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
