"""Performance over weeks: a snapshot of each algorithm and of the account after each
session's close (and at start-up for a missed day), and the reports built on them.

``autotrader report --since DATE [--period week|month] [--json] [--csv FILE]``: per period and
per series (the account, each algorithm): value at the end, return, max drawdown, trades.
``autotrader algo history ID [--json]``: one algorithm's daily rows (``ID`` 0: the account).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from datetime import date, datetime, timedelta
from typing import Any

from db import performance as perf
from db.timeutil import iso_z, utcnow

logger = logging.getLogger(__name__)


def _session_bounds(engine: Any, day: date) -> tuple[str, str]:
    s = engine.calendar.session_on(day)
    if s is None:
        lo = datetime(day.year, day.month, day.day, tzinfo=utcnow().tzinfo)
        return iso_z(lo), iso_z(lo + timedelta(days=1))
    return iso_z(s.open), iso_z(s.close + timedelta(hours=4))  # late fills count for the day


def take_snapshot(engine: Any, day: date, taken: str = "close") -> list[dict[str, Any]]:
    """Record ``day``'s values of every algorithm and of the account (replacing that day's
    earlier rows). Broker I/O (the account) runs here: call it off the engine's lock."""
    views = [v for v in engine.algorithm_views() if v.status != "deleted"]
    conn = engine.system.conn
    trades = perf.trades_between(conn, *_session_bounds(engine, day))
    now = iso_z(utcnow())
    d = day.isoformat()
    rows = [{"day": d, "algo_id": v.id, "name": v.name, "ticker": v.ticker,
             "value": float(v.value), "pnl": float(v.pnl), "position": float(v.position),
             "cash": float(v.cash), "trades": trades.get(v.id, 0), "status": v.status,
             "taken": taken, "taken_at": now} for v in views]
    try:
        acct = engine.account_summary()
        value, cash = float(acct["equity"]), float(acct["cash"])
    except Exception as e:  # noqa: BLE001 - the algorithms' rows are still worth keeping
        logger.warning("account value for %s not read (%s): the algorithms' sum is used", d, e)
        value = sum(r["value"] for r in rows)
        cash = sum(r["cash"] for r in rows)
    rows.append({"day": d, "algo_id": perf.ACCOUNT, "name": "Account", "ticker": "",
                 "value": value, "pnl": sum(r["pnl"] for r in rows), "position": 0.0,
                 "cash": cash, "trades": sum(trades.values()), "status": engine.mode,
                 "taken": taken, "taken_at": now})
    perf.record_day(conn, rows)
    logger.info("performance snapshot of %s (%s): %d algorithms, account %.2f", d, taken,
                len(rows) - 1, value)
    return rows


_NOW = object()


def missed_day(engine: Any, last_tick: Any = _NOW) -> date | None:
    """The most recent completed session with no snapshot, if trading ran since the last one
    (the app was off at that close); None when there is nothing to catch up. ``last_tick``:
    the last minute run before this start (read before the engine ticks: a tick of today
    must not pass for trading in yesterday's session)."""
    now = engine.clock.now()
    try:
        prev = engine.calendar.previous_session(now)
    except Exception:  # noqa: BLE001 - before the calendar's range
        return None
    if prev.close > now:
        return None
    day = prev.day
    if perf.has_day(engine.system.conn, day.isoformat()):
        return None
    if last_tick is _NOW:
        last_tick = engine.last_minute
    if last_tick is None or last_tick < prev.open:
        return None  # nothing ran in that session (a fresh install, a long holiday)
    return day


def exchange_day(t: datetime) -> date:
    from db.calendar import exchange_time

    return exchange_time(t).date()


def day_summary(rows: list[dict[str, Any]], previous: dict[int, dict[str, Any]]) -> str:
    """The daily summary's text: the day's P&L per algorithm and of the account."""
    lines = []
    acct = next((r for r in rows if r["algo_id"] == perf.ACCOUNT), None)
    for r in rows:
        if r["algo_id"] == perf.ACCOUNT:
            continue
        before = previous.get(r["algo_id"])
        day_pnl = r["pnl"] - (before["pnl"] if before else 0.0)
        lines.append(f"{r['name']} ({r['ticker']}): {day_pnl:+,.2f} today, value "
                     f"{r['value']:,.2f}, {r['trades']} trades")
    if acct is not None:
        before = previous.get(perf.ACCOUNT)
        change = acct["value"] - before["value"] if before else None
        head = f"Account {acct['value']:,.2f}" + (f" ({change:+,.2f} today)"
                                                   if change is not None else "")
        lines.insert(0, head + f"; algorithms {sum(1 for r in rows if r['algo_id'])}")
    return "\n".join(lines)


# --- reports -------------------------------------------------------------------------------
def period_key(day: str, period: str) -> str:
    d = date.fromisoformat(day)
    if period == "month":
        return f"{d.year:04d}-{d.month:02d}"
    y, w, _ = d.isocalendar()
    return f"{y:04d}-W{w:02d}"


def max_drawdown(values: list[float]) -> float:
    """The largest fall from a peak, in % of the peak (0 when it only rose)."""
    peak, worst = None, 0.0
    for v in values:
        peak = v if peak is None or v > peak else peak
        if peak and peak > 0:
            worst = max(worst, (peak - v) / peak * 100.0)
    return worst


def series_base(conn: Any, algo_id: int, since: str, first: dict[str, Any]) -> float:
    """What a series' return counts from: its last value before ``since``; with none, the
    value it started with (value - P&L of its first snapshot: an algorithm's capital, the
    account's equity before the algorithms' gains), so the first day's result counts too."""
    row = perf.before(conn, algo_id, since)
    if row is not None:
        return float(row["value"])
    start = float(first["value"]) - float(first["pnl"] or 0.0)
    return start if start > 0 else float(first["value"])


def report_rows(conn: Any, since: str, period: str = "week") -> list[dict[str, Any]]:
    """Per series and period: start and end value, return %, max drawdown %, trades."""
    by_algo: dict[int, list[dict[str, Any]]] = {}
    for r in perf.all_since(conn, since):
        by_algo.setdefault(r["algo_id"], []).append(r)
    out = []
    for algo_id in sorted(by_algo):
        rows = by_algo[algo_id]
        start = series_base(conn, algo_id, since, rows[0])
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(period_key(r["day"], period), []).append(r)
        for key in sorted(groups):
            g = groups[key]
            base = start
            end = g[-1]["value"]
            values = [base] + [r["value"] for r in g]
            out.append({"period": key, "algo_id": algo_id, "name": g[-1]["name"],
                        "ticker": g[-1]["ticker"], "days": len(g), "start_value": base,
                        "end_value": end,
                        "return_pct": (end / base - 1.0) * 100.0 if base else 0.0,
                        "max_drawdown_pct": max_drawdown(values),
                        "trades": sum(int(r["trades"]) for r in g)})
            start = end
    return out


MAX_ALGO_CHARTS = 20  # algo-<id>.png files written by report --out


def benchmark_series(market: Any, calendar: Any, ticker: str,
                     days: list[str]) -> list[tuple[str, float]]:
    """The reference ticker's close on each of ``days`` (its last bar of that session) from the
    market DB; days it has no bar for are left out (``autotrader data fetch SPY`` fills them)."""
    out = []
    for d in days:
        s = calendar.session_on(date.fromisoformat(d))
        if s is None:
            continue
        rows = market.bars_between(ticker, int(s.open.timestamp()), int(s.close.timestamp()))
        if rows:
            out.append((d, float(rows[-1][4])))
    return out


def write_report_files(conn: Any, since: str, out_dir: Any, period: str = "week",
                       market: Any = None, calendar: Any = None,
                       benchmark: str = "SPY") -> dict[str, Any]:
    """``report --out DIR``: periods.csv (the table), equity.csv (each day's values of the
    account, the reference ticker and each algorithm), account.png (the account against buy
    and hold of ``benchmark``) and algorithms.png (each algorithm, in % since its first day).
    Returns what was written and how many benchmark days were found."""
    from pathlib import Path

    from app.ops.charts import charts_unavailable, equity_png

    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    rows = perf.all_since(conn, since)
    series: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        series.setdefault(r["algo_id"], []).append(r)
    account = series.get(perf.ACCOUNT, [])
    days = sorted({r["day"] for r in rows})
    bench = (benchmark_series(market, calendar, benchmark, days)
             if market is not None and benchmark else [])
    names = {a: g[-1]["name"] for a, g in series.items() if a != perf.ACCOUNT}
    by_day = {(r["algo_id"], r["day"]): r["value"] for r in rows}
    bench_of = dict(bench)
    with (out / "equity.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["day", "account", benchmark or "benchmark",
                    *(f"#{a} {names[a]}" for a in sorted(names))])
        for d in days:
            w.writerow([d, by_day.get((perf.ACCOUNT, d), ""), bench_of.get(d, ""),
                        *(by_day.get((a, d), "") for a in sorted(names))])
    table = report_rows(conn, since, period)
    with (out / "periods.csv").open("w", newline="", encoding="utf-8") as f:
        dw = csv.DictWriter(f, fieldnames=list(table[0]) if table else ["period"])
        dw.writeheader()
        dw.writerows(table)

    def pts(g: list[dict[str, Any]]) -> list[tuple[str, float]]:
        return [(r["day"], float(r["value"])) for r in g]

    no_charts = charts_unavailable()  # no matplotlib (a kiosk): the CSVs alone, and why
    if no_charts:
        return {"dir": str(out), "files": ["periods.csv", "equity.csv"], "days": len(days),
                "benchmark_days": len(bench), "charts": no_charts}
    acct_base = series_base(conn, perf.ACCOUNT, since, account[0]) if account else None
    equity_png(out / "account.png", f"Account since {since}", pts(account),
               benchmark=bench, benchmark_name=benchmark, account_base=acct_base)
    equity_png(out / "algorithms.png", f"Algorithms since {since}", None,
               {f"#{a} {names[a]}": pts(series[a]) for a in names},
               bases={f"#{a} {names[a]}": series_base(conn, a, since, series[a][0])
                      for a in names})
    files = ["periods.csv", "equity.csv", "account.png", "algorithms.png"]
    tickers = {a: series[a][-1]["ticker"] for a in names}
    for a in sorted(names)[:MAX_ALGO_CHARTS]:  # each against holding its own ticker
        held = (benchmark_series(market, calendar, tickers[a], [r["day"] for r in series[a]])
                if market is not None and tickers[a] else [])
        name = f"algo-{a}.png"
        equity_png(out / name, f"#{a} {names[a]} on {tickers[a]} since {since}", None,
                   {f"#{a} {names[a]}": pts(series[a])}, benchmark=held,
                   benchmark_name=tickers[a],
                   bases={f"#{a} {names[a]}": series_base(conn, a, since, series[a][0])},
                   size=(800, 420))
        files.append(name)
    return {"dir": str(out), "files": files, "days": len(days), "benchmark_days": len(bench)}


def _table(rows: list[list[str]], head: list[str], out: Any) -> None:
    from app.term import table

    table(head, rows, file=out, shrink=("NAME",))


def _open_system(settings: Any) -> Any:
    from db.system import SystemStore

    if not settings.system_db_path.exists():
        return None
    return SystemStore(settings.system_db_path)


def main(argv: list[str]) -> int:
    """``autotrader report --since DATE``."""
    from app.cliargs import add_common_options as _common
    from app.cliargs import settings_from_args

    p = argparse.ArgumentParser(prog="autotrader report",
                                description="Returns, drawdowns and trades per week or month, "
                                            "from the daily snapshots taken after each close.")
    _common(p)
    p.add_argument("--mode", choices=["auto", "demo", "paper", "live"])
    p.add_argument("--since", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    p.add_argument("--period", choices=["week", "month"], default="week")
    p.add_argument("--json", action="store_true")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    p.add_argument("--out", metavar="DIR", help="also write charts (account.png: the account "
                   "against buy and hold of --benchmark; algorithms.png) and CSVs into DIR")
    p.add_argument("--benchmark", default="SPY", metavar="TICKER", type=_ticker,
                   help="the buy-and-hold reference in account.png (default SPY; its bars "
                        "come from the market DB: 'autotrader data fetch SPY ...')")
    args = p.parse_args(argv[1:] if argv and argv[0] == "report" else argv)
    settings = settings_from_args(args)
    system = _open_system(settings)
    if system is None:
        print(f"autotrader report: no database at {settings.system_db_path} (wrong --mode or "
              "--data-dir? it is made when the app first runs)", file=sys.stderr)
        return 2
    rows = report_rows(system.conn, args.since.isoformat(), args.period)
    written = None
    try:
        if args.out:
            written = _write_files(settings, system, args)
    finally:
        system.close()
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["period"])
            w.writeheader()
            w.writerows(rows)
    if args.json:
        print(json.dumps(rows if written is None else {"periods": rows, "files": written},
                         indent=2))
        return 0
    if written is not None:
        print(f"charts and CSVs in {written['dir']}: {', '.join(written['files'])}")
        if written.get("charts"):
            print(written["charts"], file=sys.stderr)
        if not written["benchmark_days"] and written["days"]:
            print(f"note: no {args.benchmark.upper()} bars for those days in the market DB; "
                  f"'autotrader data fetch {args.benchmark.upper()} --start {args.since} --end "
                  "...' adds the buy-and-hold line", file=sys.stderr)
    if not rows:
        print(f"no performance snapshots since {args.since} (they are taken after each close)")
        return 0
    _table([[r["period"], str(r["algo_id"] or "-"), r["name"], f"{r['end_value']:,.2f}",
             f"{r['return_pct']:+.2f}%", f"{r['max_drawdown_pct']:.2f}%", str(r["trades"]),
             str(r["days"])] for r in rows],
           ["PERIOD", "ID", "NAME", "VALUE", "RETURN", "MAX DD", "TRADES", "DAYS"], sys.stdout)
    return 0


def _ticker(text: str) -> str:
    from db.market import BadTickerError, check_ticker

    try:
        return str(check_ticker(text.strip().upper()))
    except BadTickerError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _write_files(settings: Any, system: Any, args: Any) -> dict[str, Any]:
    from db.calendar import nyse
    from db.market import MarketStore

    bench = args.benchmark or ""
    calendar = nyse()
    market = (MarketStore(settings.market_db_path, calendar)
              if settings.market_db_path.exists() else None)
    try:
        return write_report_files(system.conn, args.since.isoformat(), args.out, args.period,
                                  market, calendar, bench)
    finally:
        if market is not None:
            market.close()


def history_main(settings: Any, algo_id: int, as_json: bool, out: Any = sys.stdout) -> int:
    """``autotrader algo history ID``: the daily rows of one algorithm (0: the account)."""
    system = _open_system(settings)
    rows = [] if system is None else perf.history(system.conn, algo_id)
    if system is not None:
        system.close()
    if as_json:
        print(json.dumps(rows, indent=2), file=out)
        return 0
    if not rows:
        print(f"no daily snapshots of #{algo_id} yet (they are taken after each close)",
              file=out)
        return 0
    print(f"#{algo_id} {rows[-1]['name']}" + (f" on {rows[-1]['ticker']}"
                                                if rows[-1]["ticker"] else ""), file=out)
    prev = None
    table = []
    for r in rows:
        day_pnl = r["pnl"] - prev["pnl"] if prev else r["pnl"]
        table.append([r["day"], f"{r['value']:,.2f}", f"{r['pnl']:+,.2f}", f"{day_pnl:+,.2f}",
                      f"{r['position']:g}", f"{r['cash']:,.2f}", str(r["trades"]), r["taken"]])
        prev = r
    _table(table, ["DAY", "VALUE", "P&L", "DAY P&L", "POSITION", "CASH", "TRADES", "TAKEN"],
           out)
    return 0
