"""The report of a run: JSON, a printed table, trades and fills as CSV, and PNG charts."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from app.backtest.metrics import CONVENTIONS
from app.backtest.result import RunResult
from db.timeutil import iso_z

logger = logging.getLogger(__name__)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.2%}"


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "n/a" if x is None else format(x, fmt)


def summary_rows(r: RunResult) -> list[tuple[str, str]]:
    m = r.metrics
    assert m is not None
    first, last = (iso_z(int(r.ts[0])), iso_z(int(r.ts[-1]))) if len(r.ts) else ("", "")
    return [
        ("plugin", f"{r.plugin} {' '.join(f'{k}={v}' for k, v in r.params.items())}".strip()),
        ("ticker", r.ticker),
        ("period", f"{first} .. {last} ({m.sessions} sessions, {m.bars} bars)"),
        ("initial capital", f"{m.initial_capital:,.2f}"),
        ("final equity", f"{m.final_equity:,.2f}"),
        ("total return", _pct(m.total_return)),
        ("buy and hold", _pct(m.buy_and_hold_return)),
        ("CAGR", _pct(m.cagr)),
        ("Sharpe (daily)", _num(m.sharpe)),
        ("Sortino (daily)", _num(m.sortino)),
        ("max drawdown", _pct(m.max_drawdown)),
        ("trades (round trips)", f"{m.trades} closed, {m.open_trades} open, {m.fills} fills"),
        ("win rate", "n/a" if m.win_rate is None else f"{m.win_rate:.1%}"),
        ("exposure", f"{m.exposure:.1%}"),
        ("commission", f"{m.commission:,.2f}"),
        ("largest overdraft", f"{r.max_overdraft:,.2f}"),
        ("refused / errors", f"{r.refused} / {r.errors}"),
        ("speed", f"{r.bars_per_s:,.0f} bars/s ({r.path} path, {r.elapsed_s:.2f} s)"),
    ]


def format_table(r: RunResult) -> str:
    rows = summary_rows(r)
    w = max(len(k) for k, _ in rows)
    lines = [f"  {k:<{w}}  {v}" for k, v in rows]
    if r.stopped:
        lines.append(f"  STOPPED: {r.stopped}")
    lines += [f"  GUARD STOP {p['timestamp']}: {p['reason']}" for p in r.problems
              if p["kind"] == "guard"]
    if r.problems:
        lines.append("  first problems:")
        lines += [f"    {p['timestamp']}  {p['kind']}: {p['reason']}" for p in r.problems[:5]]
    return "\n".join(lines)


SWEEP_COLUMNS = ("ticker", "params", "return", "CAGR", "Sharpe", "Sortino", "max DD", "trades",
                 "win", "exposure", "errors")


def sweep_row(r: RunResult) -> tuple[str, ...]:
    m = r.metrics
    assert m is not None
    return (r.ticker, " ".join(f"{k}={v}" for k, v in r.params.items()) or "-",
            _pct(m.total_return), _pct(m.cagr), _num(m.sharpe), _num(m.sortino),
            _pct(m.max_drawdown), str(m.trades),
            "n/a" if m.win_rate is None else f"{m.win_rate:.0%}", f"{m.exposure:.0%}",
            str(r.refused + r.errors))


def format_sweep(rows: list[tuple[str, ...]]) -> str:
    table = [SWEEP_COLUMNS, *rows]
    widths = [max(len(row[k]) for row in table) for k in range(len(SWEEP_COLUMNS))]
    out = []
    for j, row in enumerate(table):
        out.append("  ".join(c.ljust(w) if k < 2 else c.rjust(w)
                             for k, (c, w) in enumerate(zip(row, widths, strict=True))))
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def report_dict(r: RunResult) -> dict[str, Any]:
    m = r.metrics
    assert m is not None
    d = {
        "plugin": r.plugin, "ticker": r.ticker, "params": r.params, "path": r.path,
        "start": iso_z(int(r.ts[0])) if len(r.ts) else None,
        "end": iso_z(int(r.ts[-1])) if len(r.ts) else None,
        "metrics": m.as_dict(),
        "decisions": r.decisions, "refused": r.refused, "errors": r.errors,
        "max_overdraft": r.max_overdraft, "stopped": r.stopped,
        "problems": r.problems[:50],
        "settings": r.settings,
        "elapsed_s": r.elapsed_s, "bars_per_s": r.bars_per_s,
        "conventions": CONVENTIONS,
    }
    for k in ("max_drawdown_peak_ts", "max_drawdown_trough_ts"):
        v = d["metrics"].get(k)
        d["metrics"][k.replace("_ts", "")] = iso_z(v) if v is not None else None
    return d


def charts_unavailable() -> str | None:
    """Why the PNG charts cannot be drawn here (matplotlib missing, as on a kiosk that never
    runs research), or None when they can."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ("no PNG charts: matplotlib is not installed (pip install 'matplotlib>=3.8'); "
                "the figures, trades and fills are written as usual")
    return None


def write_report(r: RunResult, out_dir: str | Path, charts: bool = True) -> dict[str, Path]:
    """Write report.json, trades.csv, fills.csv and (optionally) price.png / equity.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report": out / "report.json", "trades": out / "trades.csv",
             "fills": out / "fills.csv"}
    paths["report"].write_text(json.dumps(report_dict(r), indent=2) + "\n", encoding="utf-8")
    with paths["trades"].open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("entry_time", "exit_time", "shares", "entry_price", "exit_price", "pnl",
                    "return_pct", "closed"))
        for t in r.trips:
            ret = t.pnl / (t.entry_price * t.shares) * 100 if t.shares and t.entry_price else 0.0
            w.writerow((iso_z(t.entry_ts), iso_z(t.exit_ts) if t.exit_ts else "", t.shares,
                        f"{t.entry_price:.6f}",
                        "" if t.exit_price is None else f"{t.exit_price:.6f}",
                        f"{t.pnl:.2f}", f"{ret:.4f}", int(t.closed)))
    with paths["fills"].open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("timestamp", "type", "shares", "price", "commission", "cash", "position"))
        for f in r.fills:
            w.writerow((iso_z(f["ts"]), f["type"], f["shares"], f"{f['price']:.6f}",
                        f"{f.get('commission', 0.0):.4f}", f"{f['cash']:.2f}", f["position"]))
    if charts and len(r.ts) and charts_unavailable() is None:
        from app.backtest.charts import equity_chart, price_chart

        paths["price_png"] = price_chart(r, out / "price.png")
        paths["equity_png"] = equity_chart(r, out / "equity.png")
    logger.info("backtest report written to %s", out)
    return paths
