"""Small charts of the daily performance snapshots, for an owner who is not at the screen.

- ``equity_png``: curves in % since their first day (the account, a buy-and-hold reference
  such as SPY, each algorithm), for ``autotrader report --out`` and the daily summary;
- ``day_png``: the daily summary's picture: each algorithm's P&L of the day (bars) beside the
  account's value over the last weeks;
- ``sparkline_svg``: an inline SVG line for the status page (no image request, no script,
  nothing for the page's Content-Security-Policy to allow).

matplotlib draws off-screen (the Agg canvas, no pyplot state: safe on a worker thread, and
no display needed on a headless Pi). It is optional (the ``charts`` extra; the Pi kiosk and the
bundle go without): then the PNG writers raise ``ChartsUnavailable`` with a message saying so,
``charts_unavailable()`` tells callers beforehand, and the SVG sparkline still works.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

Series = Sequence[tuple[str, float]]  # (YYYY-MM-DD, value), oldest first

COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
ACCOUNT_COLOUR, BENCH_COLOUR = "#111111", "#999999"
MAX_LINES = 10  # more algorithms than this: the ten largest by value are drawn


NO_MATPLOTLIB = ("no PNG charts: matplotlib is not installed (the optional 'charts' extra: "
                 "pip install 'matplotlib>=3.8,<4')")


class ChartsUnavailable(RuntimeError):
    """A PNG was asked for where matplotlib is not installed."""


def charts_unavailable() -> str | None:
    """Why the PNG charts cannot be drawn here (matplotlib missing), or None when they can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return NO_MATPLOTLIB
    return None


def _figure(width_px: int, height_px: int, dpi: int = 100) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ChartsUnavailable(NO_MATPLOTLIB) from e

    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def pct_curve(series: Series, base: float | None = None) -> tuple[list[date], list[float]]:
    """Days and % change since ``base`` (default: the first value); no usable base: empty."""
    values = [(date.fromisoformat(d), float(v)) for d, v in series
              if v is not None and math.isfinite(float(v))]
    if not values:
        return [], []
    b = values[0][1] if base is None else base
    if not b:
        return [], []
    return [d for d, _ in values], [(v / b - 1.0) * 100.0 for _, v in values]


def equity_png(path: Path, title: str, account: Series | None,
               algorithms: dict[str, Series] | None = None, benchmark: Series | None = None,
               benchmark_name: str = "SPY", account_base: float | None = None,
               bases: dict[str, float] | None = None,
               size: tuple[int, int] = (1000, 520)) -> Path:
    """Write a PNG of the curves in % of each one's starting value (``account_base`` and
    ``bases`` by algorithm name when known, e.g. its capital; else its first value).
    ``ChartsUnavailable`` without matplotlib."""
    fig = _figure(*size)
    ax = fig.add_subplot(1, 1, 1)
    drawn = 0
    if account:
        x, y = pct_curve(account, account_base)
        if x:
            ax.plot(x, y, color=ACCOUNT_COLOUR, linewidth=2.2, label="Account")
            drawn += 1
    if benchmark:
        x, y = pct_curve(benchmark)
        if x:
            ax.plot(x, y, color=BENCH_COLOUR, linewidth=1.6, linestyle="--",
                    label=f"{benchmark_name} buy and hold")
            drawn += 1
    algos = sorted((algorithms or {}).items(), key=lambda kv: -(kv[1][-1][1] if kv[1] else 0))
    for i, (name, s) in enumerate(algos[:MAX_LINES]):
        x, y = pct_curve(s, (bases or {}).get(name))
        if x:
            ax.plot(x, y, color=COLOURS[i % len(COLOURS)], linewidth=1.2, label=name)
            drawn += 1
    ax.axhline(0, color="#cccccc", linewidth=0.8)
    ax.set_title(title, fontsize=11)
    ax.set_ylabel("% since the start")
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no daily snapshots yet", ha="center", va="center",
                transform=ax.transAxes)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _save(fig, path)


def day_png(path: Path, title: str, day_pnl: dict[str, float], account: Series,
            size: tuple[int, int] = (640, 320)) -> Path:
    """The daily summary's picture: the day's P&L per algorithm (bars, green/red) and the
    account's value over the last days (line). ``ChartsUnavailable`` without matplotlib."""
    fig = _figure(*size)
    left = fig.add_subplot(1, 2, 1)
    names = list(day_pnl)[:12]
    vals = [day_pnl[n] for n in names]
    left.barh(range(len(names)), vals, color=["#2ca02c" if v >= 0 else "#d62728" for v in vals])
    left.set_yticks(range(len(names)), [n[:16] for n in names], fontsize=7)
    left.invert_yaxis()
    left.axvline(0, color="#888888", linewidth=0.8)
    left.set_title("P&L today", fontsize=9)
    left.tick_params(axis="x", labelsize=7)
    right = fig.add_subplot(1, 2, 2)
    right.plot(range(len(account)), [v for _, v in account], color=ACCOUNT_COLOUR,
               linewidth=1.5, marker="o" if len(account) < 3 else None)
    if account:  # first and last day only: a phone-sized picture, no date locator needed
        ticks = sorted({0, len(account) - 1})
        right.set_xticks(ticks, [account[i][0][5:] for i in ticks])
    right.set_title("Account value", fontsize=9)
    right.tick_params(labelsize=7)
    right.grid(True, alpha=0.3)
    fig.suptitle(title, fontsize=10)
    # fixed margins: tight_layout would draw the figure a second time (a second on a Pi)
    fig.subplots_adjust(left=0.2, right=0.97, bottom=0.12, top=0.82, wspace=0.35)
    return _save(fig, path)


def sparkline_svg(values: Sequence[float], width: int = 300, height: int = 60,
                  label: str = "") -> str:
    """An inline SVG polyline of ``values`` (green if the last is above the first, else red);
    empty string for fewer than two finite values."""
    vs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if len(vs) < 2:
        return ""
    lo, hi = min(vs), max(vs)
    span = hi - lo or 1.0
    pad = 3
    step = (width - 2 * pad) / (len(vs) - 1)
    pts = " ".join(f"{pad + i * step:.1f},{height - pad - (v - lo) / span * (height - 2 * pad):.1f}"
                   for i, v in enumerate(vs))
    colour = "#4c4" if vs[-1] >= vs[0] else "#e55"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="100%" height="{height}" '
            f'viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
            f'aria-label="{html.escape(label)}"><polyline fill="none" stroke="{colour}" '
            f'stroke-width="2" points="{pts}"/></svg>')
