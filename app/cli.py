"""The ``autotrader`` command. ``python main.py`` is the same as ``autotrader``.

Subcommands:
  run (default)   start the app: the touchscreen UI, or headless where there is no display
  config          print the effective settings, where each came from (secrets masked)
  plugins         list the algorithm plugins found, broken ones with their error
  backtest        replay a plugin over history (see ``autotrader backtest --help``)
  doctor          check the set-up and say what to fix
  backup/restore  consistent copies of both DBs and the config
  algo            list, show, add, stop, resume, delete, stop-all (goes to the running app)
  guards          show or change the risk guard limits (goes to the running app)
  data            fetch / list / prune / export minute-bar history
  notify          send a test notification
  report          weekly / monthly returns, drawdowns and trades from the daily snapshots
  status-url      the read-only status page's address (with its token)
  export          every fill of a year with its realised P&L (CSV), for the owner's records
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from app import __version__
from app.cliargs import add_common_options as _common
from app.cliargs import settings_from_args
from app.config import (
    ConfigError,
    default_config_path,
    describe,
    finite_number,
)

logger = logging.getLogger(__name__)

# Subcommands whose arguments their own module parses.
DELEGATED = {
    "backtest": "app.backtest.cli",
    "doctor": "app.ops.doctor",
    "backup": "app.ops.backup",
    "restore": "app.ops.restore",
    "algo": "app.control.cli",
    "guards": "app.control.guards",
    "data": "app.marketdata.history_fetch",
    "notify": "app.ops.notify",
    "report": "app.ops.performance",
    "status-url": "app.ops.status_page",
    "export": "app.ops.tx_export",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autotrader", description="Personal algorithmic-trading terminal.")
    p.add_argument("--version", action="version", version=f"autotrader {__version__}")
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="start the app (default)")
    _common(run)
    run.add_argument("--headless", action="store_true", help="no window: log each tick to the console")
    run.add_argument("--kiosk", action="store_true", help="fullscreen window (touchscreen)")
    run.add_argument("--mode", choices=["auto", "demo", "paper", "live"])
    run.add_argument("--speed", type=finite_number(positive=True), help="demo clock speed (default 60x)")
    run.add_argument("--minutes", type=finite_number(positive=True), help="stop after this many simulated/real minutes")
    run.add_argument("--replay", metavar="DATE", help="run a stored day (YYYY-MM-DD) from the market DB again on the "
                     "simulated broker and clock (--speed), in a new folder of its own")
    cfg = sub.add_parser("config", help="print the effective settings and their sources")
    _common(cfg)
    cfg.add_argument("--init", action="store_true", help="write an example config file if none exists")
    plugins = sub.add_parser("plugins", help="list algorithm plugins")
    _common(plugins)
    for name in DELEGATED:
        sub.add_parser(name, help=f"see 'autotrader {name} --help'", add_help=False)
    return p


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("eglfs", "linuxfb", "offscreen",
                                                                "vnc", "wayland", "xcb"):
        return True
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def cmd_config(args: argparse.Namespace) -> int:
    if args.init:
        path = default_config_path() if not args.config else os.path.expanduser(args.config)
        from pathlib import Path

        from app.config import EXAMPLE_CONFIG

        path = Path(path)
        if path.exists():
            print(f"{path} exists; not overwritten")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(EXAMPLE_CONFIG, encoding="utf-8")
            path.chmod(0o600)
            print(f"wrote {path}")
    from app.term import table

    s = settings_from_args(args)
    print(f"config file: {s.config_path}{'' if os.path.exists(s.config_path) else ' (not present)'}")
    from app.control.guards import mark_in_force

    rows, note = mark_in_force(s, describe(s))  # risk limits changed in the app: in force
    table(["SETTING", "VALUE", "FROM"], [list(row) for row in rows], status_col=None,
          shrink=("FROM", "VALUE"), wrap=("VALUE", "FROM"), plain_fit=False)
    if note:
        print(note)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from app.engine.plugins import discover_plugins
    from app.term import notes, table

    s = settings_from_args(args)
    found = discover_plugins(s.plugin_dirs)
    table(["STATUS", "PLUGIN", "DESCRIPTION"],
          [["BROKEN" if p.error else "ok", p.name, p.error or p.description] for p in found],
          shrink=("DESCRIPTION", "PLUGIN"), wrap=("DESCRIPTION",), plain_wrap=True)
    params = [f"{p.name}: " + ", ".join(f"{k}={v!r}" for k, v in p.params.items())
              for p in found if not p.error and p.params]
    if params:
        notes("Parameters (defaults; --param NAME=VALUE to change)", params, style="")
    if not found:
        print("no plugins found in " + ", ".join(str(d) for d in s.plugin_dirs))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from app.logging_setup import register_secret, setup_logging

    s = settings_from_args(args)
    if args.replay:  # the demo over a stored day, in a folder of its own (app.backtest.dayreplay)
        from app.backtest.dayreplay import prepare_replay
        from app.backtest.errors import BacktestError

        try:
            s, session_minutes = prepare_replay(s, args.replay)
        except BacktestError as e:
            print(f"autotrader: {e}", file=sys.stderr)
            return 2
        if args.minutes is None and (args.headless or not has_display()):
            args.minutes = session_minutes  # headless: end after the day's last minute
        print(f"Replay of {args.replay} at x{s.demo.speed:g} in {s.data_path}", file=sys.stderr)
    register_secret(s.alpaca.key_id)
    register_secret(s.alpaca.secret_key)
    log_file = setup_logging(s.log_level, s.log_path)
    logger.info("AutoTrader %s starting in %s mode; log file %s", __version__,
                s.effective_mode.upper(), log_file)
    headless = args.headless or not has_display()
    if not headless:
        try:
            from app.ui.app import run_gui
        except ImportError as e:
            logger.warning("the window cannot start (%s); running headless instead", e)
            headless = True
    if headless:
        if not args.headless:
            print("No display found: running headless. For the window, run on a desktop "
                  "(DISPLAY set), or on the Pi with QT_QPA_PLATFORM=eglfs.", file=sys.stderr)
        from app.control.server import start_control
        from app.engine.runner import run_headless
        from app.memtrim import start_heap_trimmer
        from app.ops.operations import with_operations

        # Months unattended: freed C-heap pages go back to the system every minute (glibc);
        # the window starts it after its first frame (app/ui/app.py).
        start_heap_trimmer()

        # the control channel, then notifications, snapshots, status page (app/ops)
        return run_headless(s, minutes=args.minutes,
                            start_control=with_operations(start_control, s))
    return run_gui(s, kiosk=s.ui.kiosk, minutes=args.minutes, replay=args.replay or "")


def main(argv: list[str] | None = None) -> int:
    # Everything AutoTrader creates (data folder, DBs, logs, backups, config) is its owner's
    # only: folders 0700, files 0600.
    if hasattr(os, "umask"):
        os.umask(0o077)
    # Two malloc arenas, set before any thread starts (glibc fixes the limit then): the
    # engine's many threads each left free space in an arena of its own, +3 MB/h on a kiosk
    # left locked for days (issue 19, app/memtrim.py).
    from app.memtrim import limit_arenas

    limit_arenas()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        import importlib

        module = importlib.import_module(DELEGATED[argv[0]])
        try:
            return int(module.main(argv) or 0)
        except ConfigError as e:
            print(f"autotrader: configuration error: {e}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # ``| head`` left early: what was asked is done, stay quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except OSError as e:
            if not e.filename:  # not a file the user named: a bug or an outage, shown whole
                raise
            print(f"autotrader {argv[0]}: {e.strerror or e}: {e.filename}", file=sys.stderr)
            return 2
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["run", *argv]
    args = build_parser().parse_args(argv)
    try:
        if args.command == "config":
            return cmd_config(args)
        if args.command == "plugins":
            return cmd_plugins(args)
        return cmd_run(args)
    except ConfigError as e:
        print(f"autotrader: configuration error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
