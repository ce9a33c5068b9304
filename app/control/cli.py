"""``autotrader algo ...``: list, show, add, stop, resume, delete, stop-all.

When the app (window or headless) runs on the data folder, the request goes to it through the
control socket and the running engine applies it (the touchscreen shows it at once). When it
does not, the engine is built here without its scheduler and the request is applied to the DB
directly, with the same checks. LIVE mode asks for the PIN on the terminal before an add, a
stop-and-sell or a stop-all.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

from app.config import Settings, finite_number
from app.control.client import ControlClient
from app.control.server import ControlUnavailable

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
BROKER_JOBS_WAIT = 30.0  # seconds the offline command waits for its cancels / sale


def parser() -> argparse.ArgumentParser:
    from app.cliargs import add_common_options as _common

    p = argparse.ArgumentParser(prog="autotrader algo",
                                description="Inspect and change algorithms (the running app "
                                            "applies the change when it is running).")
    sub = p.add_subparsers(dest="action", required=True)

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_)
        _common(c)
        c.add_argument("--mode", choices=["auto", "demo", "paper", "live"],
                       help="which mode's data folder (default: as the config says)")
        c.add_argument("--json", action="store_true", help="machine-readable output")
        return c

    cmd("list", "a table of every algorithm")
    c = cmd("show", "one algorithm: parameters, transactions, orders")
    c.add_argument("id", type=int)
    c = cmd("add", "create an algorithm")
    c.add_argument("plugin")
    c.add_argument("ticker")
    c.add_argument("--capital", type=finite_number(positive=True), required=True)
    c.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="a plugin parameter (repeat for several)")
    c.add_argument("--name", default="")
    c = cmd("stop", "stop an algorithm (its position is kept unless --sell)")
    c.add_argument("id", type=int)
    c.add_argument("--sell", action="store_true", help="sell its whole position at market")
    c = cmd("resume", "run a stopped algorithm again, or lift its pause")
    c.add_argument("id", type=int)
    c = cmd("delete", "stop (keeping the position) and hide; its history stays")
    c.add_argument("id", type=int)
    c = cmd("history", "daily snapshots after each close (ID 0: the account)")
    c.add_argument("id", type=int)
    c = cmd("stop-all", "the panic button: stop every algorithm")
    c.add_argument("--sell", action="store_true", help="and sell every position at market")
    return p


def request_of(args: argparse.Namespace) -> dict[str, Any]:
    a = args.action
    if a == "list":
        return {"cmd": "list"}
    if a == "add":
        params = {}
        for kv in args.param:
            k, sep, v = kv.partition("=")
            if not sep or not k.strip():
                raise ValueError(f"--param {kv!r}: expected NAME=VALUE")
            params[k.strip()] = v.strip()
        return {"cmd": "add", "plugin": args.plugin, "ticker": args.ticker,
                "capital": args.capital, "params": params, "name": args.name}
    if a == "stop":
        return {"cmd": "stop", "id": args.id, "sell": args.sell}
    if a == "stop-all":
        return {"cmd": "stop_all", "sell": args.sell}
    return {"cmd": a, "id": args.id}


def needs_pin(req: dict[str, Any]) -> bool:
    return req["cmd"] in ("add", "stop_all") or (req["cmd"] == "stop" and bool(req.get("sell")))


def confirm_pin(settings: Settings, ask: Callable[[str], str] | None = None,
                interactive: bool | None = None) -> tuple[bool, str]:
    import getpass

    from app.security import PinGuard, confirm_live_in_terminal
    from db.system import SystemStore

    system = SystemStore(settings.system_db_path)
    try:
        return confirm_live_in_terminal(
            PinGuard(system), sys.stdin.isatty() if interactive is None else interactive,
            ask or getpass.getpass)
    finally:
        system.close()


def wait_broker_jobs(engine: Any, timeout: float = BROKER_JOBS_WAIT) -> bool:
    """Wait until every broker job queued so far (cancels, sales) has finished: one barrier job
    per broker-job thread can only all run once each thread is done with what it took."""
    n = len(getattr(engine.io, "_workers", ())) or 1
    barrier = threading.Barrier(n)
    futs = [engine.io.submit(barrier.wait, timeout) for _ in range(n)]
    try:
        for f in futs:
            f.result(timeout=timeout)
        return True
    except Exception:  # noqa: BLE001 - a timeout: the sale continues at the next start
        return False


def apply_offline(settings: Settings, req: dict[str, Any]) -> dict[str, Any]:
    from app.control.service import ControlService
    from app.engine.runner import AlreadyRunningError, build_engine

    try:
        engine, _scheduler = build_engine(settings)
    except AlreadyRunningError as e:
        raise ControlUnavailable(f"{e} (its control channel does not answer)") from None
    try:
        answer = ControlService(engine, running=False).handle(req)
        if req["cmd"] in ("stop", "stop_all", "delete") and not wait_broker_jobs(engine):
            answer.setdefault("warning", "the broker did not confirm the cancels/sale in "
                                         f"{BROKER_JOBS_WAIT:g} s; the next start reconciles")
        return answer
    finally:
        engine.close()
        engine.system.close()
        engine.market.close()


def _money(v: Any) -> str:
    return "-" if v is None else f"{v:,.2f}"


def print_table(rows: list[list[str]], head: list[str], out: Any = None) -> None:
    from app.term import table

    table(head, rows, file=out, shrink=("REASON", "NAME", "PLUGIN", "TIME"), wrap=("REASON",))


def print_answer(req: dict[str, Any], ans: dict[str, Any], out: Any = None) -> None:
    out = sys.stdout if out is None else out
    cmd = req["cmd"]
    if cmd == "list":
        where = "the running app" if ans.get("running") else "the database (app not running)"
        print(f"{str(ans.get('mode', '')).upper()} mode, from {where}", file=out)
        rows = [[str(a["id"]), a["name"], a["plugin"], a["ticker"], a["status"],
                 f"{a['position']:g}", _money(a["value"]), f"{a['pnl']:+,.2f}",
                 "yes" if a["error"] else ""] for a in ans["algorithms"]]  # in full below
        print_table(rows, ["ID", "NAME", "PLUGIN", "TICKER", "STATUS", "POS", "VALUE",
                           "P&L", "ERR"], out)
        if not rows:
            print("no algorithms: 'autotrader algo add PLUGIN TICKER --capital X'", file=out)
        errors = [a for a in ans["algorithms"] if a["error"]]
        if errors:  # in full below the table (a table cell would cut them)
            from app.term import notes

            notes("Last errors", [f"#{a['id']} {a['name']}: {a['error']}" for a in errors],
                  file=out)
        return
    if cmd == "show":
        a = ans["algorithm"]
        print(f"#{a['id']} {a['name']}: {a['plugin']} on {a['ticker']}, {a['status']}", file=out)
        if a["error"]:
            print(f"  last error: {a['error']}", file=out)
        print(f"  capital {_money(a['initial_capital'])}, cash {_money(a['cash'])}, position "
              f"{a['position']:g}, value {_money(a['value'])}, P&L {a['pnl']:+,.2f} "
              f"({a['pnl_pct']:+.2f}%)", file=out)
        params = ", ".join(f"{k}={v!r}" for k, v in a["params"].items()) or "(defaults)"
        print(f"  parameters: {params}", file=out)
        print(f"\nTransactions ({len(ans['transactions'])})", file=out)
        print_table([[str(t.get("timestamp", "")), t["type"], f"{t['shares']:g}",
                      f"{t['price']:.4f}"] for t in ans["transactions"]],
                    ["TIME", "TYPE", "SHARES", "PRICE"], out)
        print(f"\nOrders ({len(ans['orders'])})", file=out)
        print_table([[str(o.get("minute") or o.get("created_at") or ""), o["side"],
                      f"{o['qty']:g}", str(o["status"]), str(o.get("reason") or "")]
                     for o in ans["orders"]], ["MINUTE", "SIDE", "QTY", "STATUS", "REASON"],
                    out)
        return
    if cmd == "add":
        a = ans["algorithm"]
        print(f"created #{ans['id']} {a['name']}: {a['plugin']} on {a['ticker']} with "
              f"{_money(a['initial_capital'])}", file=out)
    elif cmd in ("stop", "resume"):
        a = ans["algorithm"]
        print(f"#{a['id']} {a['name']}: {a['status']}, position {a['position']:g}", file=out)
    elif cmd == "delete":
        print(f"deleted #{ans['id']} (its history stays in the database)", file=out)
    elif cmd == "stop_all":
        print("all algorithms stopped" + (" and their positions sold"
                                          if req.get("sell") else ""), file=out)
    if ans.get("warning"):
        print(f"warning: {ans['warning']}", file=out)


def main(argv: list[str]) -> int:
    from app.cliargs import settings_from_args
    from app.logging_setup import register_secret, setup_logging

    args = parser().parse_args(argv[1:] if argv and argv[0] == "algo" else argv)
    if args.action == "history":  # the system DB's snapshots: no engine, no channel
        from app.cli import settings_from_args as _settings
        from app.ops.performance import history_main

        return history_main(_settings(args), args.id, args.json)
    try:
        req = request_of(args)
    except ValueError as e:
        print(f"autotrader algo: {e}", file=sys.stderr)
        return EXIT_USAGE
    settings = settings_from_args(args)
    register_secret(settings.alpaca.key_id)
    register_secret(settings.alpaca.secret_key)
    try:
        client = ControlClient.connect(settings.data_path)
        if client is None:
            if req["cmd"] not in ("list", "show"):
                setup_logging(settings.log_level, settings.log_path, console=False)
            mode = settings.effective_mode
            if mode == "live" and needs_pin(req):
                ok, message = confirm_pin(settings)
                if not ok:
                    print(message, file=sys.stderr)
                    return EXIT_REFUSED
            ans = apply_offline(settings, req)
        else:
            with client:
                mode = client.request({"cmd": "ping"}).get("mode", settings.effective_mode)
                if mode == "live" and needs_pin(req):
                    ok, message = confirm_pin(settings)
                    if not ok:
                        print(message, file=sys.stderr)
                        return EXIT_REFUSED
                ans = client.request(req)
    except ControlUnavailable as e:
        print(f"autotrader algo: {e}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        if args.json:
            print(json.dumps(ans, indent=2, default=str))
        elif ans.get("ok"):
            print_answer(req, ans)
        else:
            print(f"refused: {ans.get('error')}", file=sys.stderr)
        sys.stdout.flush()
    except BrokenPipeError:  # ``| head``: the change is made; the rest is not read
        sys.stdout = None  # type: ignore[assignment]
    return EXIT_OK if ans.get("ok") else EXIT_REFUSED
