"""PNG charts of a run (matplotlib, Agg backend: no display, no Qt).

The x axis is the bar number, labelled with dates, so nights and weekends take no room.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

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
