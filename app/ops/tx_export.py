"""``autotrader export transactions --year YYYY``: every fill of a year for the owner's records.

One row per fill (deleted algorithms included), with the realised P&L of each sale on the
engine's own average-cost method (app/engine/ledger.py: the same figures as the cards), the
commission, and the position and average cost after it. Dividends and cash in lieu of a
fractional share after a split are realised too: they are rows of their own (``type``
dividend / cash_in_lieu). The ledger is replayed from each algorithm's first fill, so a sale
in January counts against shares bought the year before. Read-only: it opens the system DB
and changes nothing (it works while the app runs).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from app.engine.ledger import Ledger

COLUMNS = ("timestamp", "algo_id", "algorithm", "ticker", "type", "shares", "price",
           "amount", "commission", "realised_pnl", "position_after", "avg_cost_after")


def _event_row(ev: dict[str, Any], led: Ledger, before: float) -> dict[str, Any]:
    return {"timestamp": ev.get("timestamp") or "", "type": ev["type"],
            "shares": ev.get("shares") or 0, "price": ev.get("price"),
            "amount": round(float(ev.get("cash") or 0.0), 2), "commission": 0.0,
            "realised_pnl": round(led.realised - before, 2)}


def algorithm_rows(algo: dict[str, Any], txs: list[dict[str, Any]],
                   events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replay one algorithm's fills and corporate-action events (in the engine's order: an
    event after every fill with ``id <= after_tx_id``); one row per fill and per event that
    realised cash."""
    led = Ledger(float(algo["initial_capital"]))
    pending = sorted(events, key=lambda e: (int(e.get("after_tx_id") or 0), int(e["id"])))
    out: list[dict[str, Any]] = []
    i = 0

    def flush(upto: int | None) -> None:
        nonlocal i
        while i < len(pending) and (upto is None or
                                    upto > int(pending[i].get("after_tx_id") or 0)):
            before = led.realised
            led.apply_event(pending[i])
            if pending[i]["type"] in ("dividend", "cash_in_lieu"):
                out.append(_event_row(pending[i], led, before))
            i += 1

    for tx in txs:
        flush(int(tx["id"]))
        before = led.realised
        led.apply(tx)
        shares, price = int(tx["shares"]), float(tx["price"])
        out.append({"timestamp": tx["timestamp"], "type": tx["type"], "shares": shares,
                    "price": price,
                    "amount": round(shares * price * (-1 if tx["type"] == "buy" else 1), 2),
                    "commission": float(tx.get("commission") or 0.0),
                    # a buy's realised figure is its commission (a cost), a sale's its gain
                    "realised_pnl": round(led.realised - before, 2)})
        out[-1].update(position_after=led.position,
                       avg_cost_after=None if led.avg_cost is None else round(led.avg_cost, 4))
    flush(None)
    for r in out:
        r.setdefault("position_after", None)
        r.setdefault("avg_cost_after", None)
        r.update(algo_id=algo["id"], algorithm=algo["name"], ticker=algo["ticker"])
    return out


def year_rows(system: Any, year: int) -> list[dict[str, Any]]:
    """Every row of ``year`` (UTC timestamps; a fill's year is the year of its timestamp)."""
    from db import corporate

    algos = system.list_algorithms(("running", "stopped", "error", "deleted"))
    evs = corporate.events(system)
    prefix = f"{year:04d}-"
    rows: list[dict[str, Any]] = []
    for a in algos:
        mine = [e for e in evs if e["algo_id"] == a["id"]]
        rows += [r for r in algorithm_rows(a, system.transactions(a["id"]), mine)
                 if str(r["timestamp"]).startswith(prefix)]
    rows.sort(key=lambda r: (str(r["timestamp"]), r["algo_id"]))
    return rows


def totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {"fills": sum(1 for r in rows if r["type"] in ("buy", "sell")),
            "realised_pnl": round(sum(r["realised_pnl"] for r in rows), 2),
            "commission": round(sum(r["commission"] for r in rows), 2),
            "bought": round(-sum(r["amount"] for r in rows if r["type"] == "buy"), 2),
            "sold": round(sum(r["amount"] for r in rows if r["type"] == "sell"), 2)}


def parser() -> argparse.ArgumentParser:
    from app.cliargs import add_common_options

    p = argparse.ArgumentParser(prog="autotrader export",
                                description="Records for the owner: every fill of a year.")
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("transactions", help="every fill of a year, realised P&L per sale (CSV)")
    add_common_options(t)
    t.add_argument("--mode", choices=["auto", "demo", "paper", "live"])
    t.add_argument("--year", type=int, default=date.today().year,
                   help="calendar year (UTC timestamps; default: this year)")
    t.add_argument("--csv", metavar="FILE", default="-",
                   help="where to write (default: - for stdout)")
    t.add_argument("--json", action="store_true", help="JSON instead of CSV")
    return p


def main(argv: list[str]) -> int:
    from app.cliargs import settings_from_args
    from db.system import SystemStore

    args = parser().parse_args(argv[1:] if argv and argv[0] == "export" else argv)
    if not 2000 <= args.year <= 2100:
        print(f"autotrader export: --year {args.year} is not a year this app traded in",
              file=sys.stderr)
        return 2
    settings = settings_from_args(args)
    if not settings.system_db_path.exists():
        print(f"autotrader export: no database at {settings.system_db_path} (wrong --mode or "
              "--data-dir?)", file=sys.stderr)
        return 2
    system = SystemStore(settings.system_db_path)
    try:
        rows = year_rows(system, args.year)
    finally:
        system.close()
    out_path = None if args.csv == "-" else Path(args.csv).expanduser()
    f = sys.stdout if out_path is None else out_path.open("w", newline="", encoding="utf-8")
    try:
        if args.json:
            json.dump({"year": args.year, "totals": totals(rows), "rows": rows}, f, indent=2)
            f.write("\n")
        else:
            w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    finally:
        if out_path is not None:
            f.close()
    if out_path is not None:
        t = totals(rows)
        print(f"{t['fills']} fills of {args.year} written to {out_path}: realised P&L "
              f"{t['realised_pnl']:+,.2f}, commissions {t['commission']:,.2f}")
    return 0
