"""Risk guard limits over the control channel: ``autotrader guards [set NAME VALUE]``.

Requests (served by ``ControlService``, which inherits ``GuardRequests``):

- ``{"cmd": "guards"}``: every limit (name, label, value, shown, config value) and the last
  changes;
- ``{"cmd": "guards_check", "name", "value"}``: what a change would do (old, new, loosens,
  needs_pin), nothing changed; a bad value is refused with the engine's message;
- ``{"cmd": "guards_set", "name", "value", "pin"}``: the change, made by the engine
  (``Engine.set_guard_limit``: validated, stored before use, logged). Loosening in LIVE mode
  needs ``pin``, checked here against the app's own PIN (with its lock-out after wrong tries),
  not trusted from the client; the PIN is removed from the request before anything can log it.

The command line asks for the PIN (without echo) only when the change loosens a limit in LIVE
mode; with no terminal to type it in, it refuses.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from app.engine.model import EngineError

logger = logging.getLogger(__name__)

SOURCE = "from the command line"
HISTORY_SHOWN = 10


def _name_value(req: dict[str, Any]) -> tuple[str, Any]:
    name, value = req.get("name"), req.get("value")
    if not isinstance(name, str) or not name:
        raise EngineError("a guard name is needed ('autotrader guards' lists them)")
    if value is None:
        raise EngineError("a value is needed")
    return name, value


class GuardRequests:
    """The guard requests of ``ControlService`` (mixed in; ``self.engine`` is set there)."""

    engine: Any

    def do_guards(self, req: dict[str, Any]) -> dict[str, Any]:
        from app.engine.guard_edit import history

        return {"mode": self.engine.mode, "guards": self.engine.guard_limits(),
                "history": history(self.engine.system)[-HISTORY_SHOWN:]}

    def do_guards_check(self, req: dict[str, Any]) -> dict[str, Any]:
        name, value = _name_value(req)
        old, new, loose = self.engine.check_guard_limit(name, value)
        return {"name": name, "old": old, "new": new, "loosens": loose,
                "needs_pin": loose and self.engine.mode == "live"}

    def do_guards_set(self, req: dict[str, Any]) -> dict[str, Any]:
        pin = req.pop("pin", None)  # first: no later log line can hold it
        name, value = _name_value(req)
        _old, _new, loose = self.engine.check_guard_limit(name, value)
        confirmed = False
        if loose and self.engine.mode == "live":
            if not isinstance(pin, str) or not pin:
                raise EngineError(f"raising or turning off {name} in LIVE mode needs the PIN")
            from app.security import PinGuard

            result = PinGuard(self.engine.system).check(pin.strip())
            if not result.ok:
                raise EngineError(result.message or "wrong PIN")
            confirmed = True
        ch = self.engine.set_guard_limit(name, value, confirmed=confirmed, source=SOURCE)
        return {"change": {"name": ch.name, "old": ch.old, "new": ch.new,
                           "loosened": ch.loosened, "at": ch.at}}


# --- the command line -----------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    from app.cliargs import add_common_options

    p = argparse.ArgumentParser(
        prog="autotrader guards",
        description="Show or change the risk guard limits (the running app applies a change "
                    "at once; it is kept across restarts). 0 or 'off' turns a limit off.")
    add_common_options(p)
    p.add_argument("--mode", choices=["auto", "demo", "paper", "live"],
                   help="which mode's data folder (default: as the config says)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("action", nargs="?", choices=["list", "set"], default="list")
    p.add_argument("name", nargs="?", help="the limit to change (see the list)")
    p.add_argument("value", nargs="?", help="its new value: a number, or off")
    return p


def print_guards(ans: dict[str, Any], out: Any = None) -> None:
    from app.term import notes, table

    out = sys.stdout if out is None else out
    where = "the running app" if ans.get("running") else "the database (app not running)"
    print(f"{str(ans.get('mode', '')).upper()} mode, risk guards of {where}", file=out)
    from app.engine.guard_edit import shown

    table(["NAME", "VALUE", "CONFIG", "WHAT"],
          [[g["name"], g["shown"] + (" *" if g["edited"] else ""), shown(g["name"], g["config"]),
            g["label"]] for g in ans["guards"]],
          file=out, shrink=("WHAT",), wrap=("WHAT",))
    print("* changed in the app or here (kept across restarts; a newer config value wins)",
          file=out)
    if ans.get("history"):
        notes("Last changes", [f"{h['at']} {h['name']}: {shown(h['name'], h['old'])} -> "
                               f"{shown(h['name'], h['new'])} "
                               f"({h.get('source', '')})" for h in ans["history"]], file=out,
              style="")


def mark_in_force(settings: Any, rows: list[tuple[str, str, str]]
                  ) -> tuple[list[tuple[str, str, str]], str]:
    """``autotrader config``'s rows with each ``risk.*`` limit changed in the app (Settings,
    ``guards set``) marked, the value in force beside the file's, read from the data folder's
    system DB as the engine does at start; and a note for under the table ('' if none)."""
    from app.engine.guard_edit import SPECS, limits_in_force
    from app.engine.guards import RiskLimits

    try:
        base = RiskLimits.from_settings(getattr(settings, "risk", None))
    except ValueError:  # the file's [risk] is refused by the engine too: shown as it is
        return rows, ""
    limits, _ = limits_in_force(settings.system_db_path, base)
    out: list[tuple[str, str, str]] = []
    marked = 0
    for key, value, source in rows:
        name = key.removeprefix("risk.")
        if key.startswith("risk.") and name in SPECS \
                and getattr(limits, name) != getattr(base, name):
            value, source = f"{value} * in force: {getattr(limits, name)}", \
                f"{source}; * changed in the app"
            marked += 1
        out.append((key, value, source))
    note = (f"* {marked} risk guard{'s' if marked != 1 else ''} changed in the app or with "
            f"'autotrader guards' (kept in {settings.system_db_path}): the value in force, "
            "until the file's value for it changes" if marked else "")
    return out, note


class _Offline:
    """The app is not running: an engine built here (no scheduler), the DB changed directly."""

    def __init__(self, settings: Any) -> None:
        from app.control.server import ControlUnavailable
        from app.control.service import ControlService
        from app.engine.runner import AlreadyRunningError, build_engine

        try:
            self.engine, _ = build_engine(settings)
        except AlreadyRunningError as e:
            raise ControlUnavailable(f"{e} (its control channel does not answer)") from None
        self.service = ControlService(self.engine, running=False)

    def request(self, req: dict[str, Any]) -> dict[str, Any]:
        return self.service.handle(req)

    def close(self) -> None:
        self.engine.close()
        self.engine.system.close()
        self.engine.market.close()


def _ask_pin(interactive: bool) -> str | None:
    import getpass

    if not interactive:
        return None
    try:
        return getpass.getpass("Loosening a risk guard in LIVE mode. PIN to confirm: ")
    except (EOFError, KeyboardInterrupt):
        return None


def run(channel: Any, args: argparse.Namespace, running: bool,
        interactive: bool | None = None) -> dict[str, Any]:
    """The request(s) of ``args`` over ``channel`` (client or offline service): the answer."""
    if args.action == "list":
        ans = channel.request({"cmd": "guards"})
        ans["running"] = running
        return ans
    req = {"cmd": "guards_set", "name": args.name, "value": args.value}
    check = channel.request({"cmd": "guards_check", "name": args.name, "value": args.value})
    if not check.get("ok"):
        return check
    if check.get("needs_pin"):
        pin = _ask_pin(sys.stdin.isatty() if interactive is None else interactive)
        if not pin:
            return {"ok": False, "error": (
                f"raising or turning off {args.name} in LIVE mode needs your PIN, and there "
                "is no terminal to type it in (or none was typed): run it in a terminal, or "
                "change it on the Settings screen")}
        req["pin"] = pin
    return channel.request(req)


def main(argv: list[str]) -> int:
    from app.cliargs import settings_from_args
    from app.control.client import ControlClient
    from app.control.server import ControlUnavailable
    from app.logging_setup import register_secret, setup_logging

    args = parser().parse_args(argv[1:] if argv and argv[0] == "guards" else argv)
    if args.action == "set" and (args.name is None or args.value is None):
        print("autotrader guards: set needs NAME and VALUE (e.g. guards set "
              "algo_max_daily_loss_pct 5)", file=sys.stderr)
        return 2
    settings = settings_from_args(args)
    register_secret(settings.alpaca.key_id)
    register_secret(settings.alpaca.secret_key)
    try:
        client = ControlClient.connect(settings.data_path)
        if client is not None:
            with client:
                ans = run(client, args, running=True)
        else:
            if args.action == "set":
                setup_logging(settings.log_level, settings.log_path, console=False)
            offline = _Offline(settings)
            try:
                ans = run(offline, args, running=False)
            finally:
                offline.close()
    except ControlUnavailable as e:
        print(f"autotrader guards: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(ans, indent=2, default=str))
    elif not ans.get("ok"):
        print(f"refused: {ans.get('error')}", file=sys.stderr)
    elif args.action == "list":
        print_guards(ans)
    else:
        from app.engine.guard_edit import shown

        c = ans["change"]
        print(f"{c['name']}: {shown(c['name'], c['old'])} -> {shown(c['name'], c['new'])}"
              + (" (loosened)" if c["loosened"] else ""))
    return 0 if ans.get("ok") else 1
