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


def missed_day(engine: Any) -> date | None:
    """The most recent completed session with no snapshot, if trading ran since the last one
    (the app was off at that close); None when there is nothing to catch up."""
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


def report_rows(conn: Any, since: str, period: str = "week") -> list[dict[str, Any]]:
    """Per series and period: start and end value, return %, max drawdown %, trades."""
    by_algo: dict[int, list[dict[str, Any]]] = {}
    for r in perf.all_since(conn, since):
        by_algo.setdefault(r["algo_id"], []).append(r)
    out = []
    for algo_id in sorted(by_algo):
        rows = by_algo[algo_id]
        start_row = perf.before(conn, algo_id, since)
        start = start_row["value"] if start_row else None
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(period_key(r["day"], period), []).append(r)
        for key in sorted(groups):
            g = groups[key]
            base = start if start is not None else g[0]["value"]
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


def _table(rows: list[list[str]], head: list[str], out: Any) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip(), file=out)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip(), file=out)


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
    args = p.parse_args(argv[1:] if argv and argv[0] == "report" else argv)
    settings = settings_from_args(args)
    system = _open_system(settings)
    rows = [] if system is None else report_rows(system.conn, args.since.isoformat(),
                                                 args.period)
    if system is not None:
        system.close()
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["period"])
            w.writeheader()
            w.writerows(rows)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no performance snapshots since {args.since} (they are taken after each close)")
        return 0
    _table([[r["period"], str(r["algo_id"] or "-"), r["name"], f"{r['end_value']:,.2f}",
             f"{r['return_pct']:+.2f}%", f"{r['max_drawdown_pct']:.2f}%", str(r["trades"]),
             str(r["days"])] for r in rows],
           ["PERIOD", "ID", "NAME", "VALUE", "RETURN", "MAX DD", "TRADES", "DAYS"], sys.stdout)
    return 0


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
