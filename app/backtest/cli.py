"""``autotrader backtest``: replay a plugin over history and report how it would have done.

    autotrader backtest PLUGIN TICKER[,TICKER...] [--start D] [--end D] [--capital N]
                        [--csv FILE ...] [--param name=value[,value...] ...] [--out DIR]
                        [--vector] [--fill open|close] [--slippage-bps X] [--commission X]

Several tickers or several values of a parameter make a sweep: every combination runs, in
parallel over all cores, and one summary table is printed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from app.backtest.errors import BacktestError
from app.backtest.fills import FILL_RULES
from app.backtest.metrics import CONVENTIONS
from app.config import finite_number

logger = logging.getLogger(__name__)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _split(text: str) -> tuple[str, str, float, float]:
    from app.broker.sim_corporate import parse_split

    try:
        return parse_split(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="autotrader backtest",
        description="Run an algorithm plugin, unchanged, over minute bars from the market DB "
                    "or a CSV file, and report how it would have done.",
        epilog="CSV columns: timestamp,open,high,low,close,volume (or t,o,h,l,c,v; "
               "Datetime,Open,...; separate date and time columns); timestamp = the minute's "
               "start, ISO-8601 with Z or an offset, epoch seconds, or local times with --tz; "
               "sorted; rows outside regular NYSE sessions are dropped and counted. A "
               "decision made at minute t sees the bars before t and fills at the open of "
               "bar t (--fill close: at the last close). Walk-forward optimisation: "
               "'autotrader backtest optimize --help'.")
    p.add_argument("plugin", help="plugin name (see 'autotrader plugins')")
    p.add_argument("tickers", nargs="+", metavar="TICKER",
                   help="ticker symbol(s); several (or AAPL,MSFT) make a sweep")
    p.add_argument("--start", type=_date, help="first day (YYYY-MM-DD, New York); default: "
                   "the first day of the data")
    p.add_argument("--end", type=_date, help="last day, inclusive; default: the last day of "
                   "the data")
    p.add_argument("--capital", type=finite_number(), default=10_000.0,
                   help="the algorithm's starting capital (default 10000)")
    p.add_argument("--csv", action="append", type=Path, default=[],
                   help="bars from this CSV instead of the market DB (one per ticker, same "
                        "order)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE[,VALUE...]",
                   help="plugin parameter; several values make a sweep")
    p.add_argument("--out", type=Path, help="report folder (default: ./backtest-out/"
                   "PLUGIN-TICKER)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--vector", action="store_true",
                     help="the vectorised version of the strategy (much faster; sweeps)")
    how.add_argument("--exact", action="store_true",
                     help="run the live engine's tick itself each minute, with SQLite and the "
                          "simulated broker (slow: for short periods and cross-checks)")
    p.add_argument("--guards", action="store_true",
                   help="apply the risk guards in force as live does (daily loss, drawdown, "
                        "orders per day...): the config's [risk] with the changes made in the "
                        "app or with 'autotrader guards'; runs the exact path; the report says "
                        "which limits and lists guard stops")
    p.add_argument("--fill", choices=FILL_RULES, default="open",
                   help="fill at the open of the decision minute's bar (default) or at the "
                        "last close")
    p.add_argument("--slippage-bps", type=finite_number(0.0),
                   help="slippage against each fill in basis points (default: the config's "
                        "engine.slippage_bps)")
    p.add_argument("--commission", type=finite_number(0.0),
                   help="commission per share (default: the config's "
                        "engine.commission_per_share)")
    p.add_argument("--tz", metavar="ZONE",
                   help="time zone of CSV times written without one (e.g. America/New_York)")
    p.add_argument("--split", action="append", type=_split, default=[],
                   metavar="TICKER:DATE:RATIO",
                   help="a split in the data (e.g. NVDA:2024-06-10:10, or 1:10 for a reverse "
                        "split): prices before DATE are adjusted, as the app does at ingest")
    p.add_argument("--adjusted", action="store_true",
                   help="the CSV's prices are split-adjusted already (no split warning)")
    p.add_argument("--strict-cash", action="store_true",
                   help="refuse a buy whose fill price overdraws the algorithm's cash (by "
                        "default it fills, as live, where the account pays the difference)")
    p.add_argument("--workers", type=int, help="processes for a sweep (default: all cores)")
    p.add_argument("--dask", metavar="SCHEDULER",
                   help="run a sweep's backtests on a Dask cluster: its scheduler's address "
                        "(tcp://HOST:8786) or 'local' (a local cluster); needs the 'research' "
                        "extra")
    p.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    p.add_argument("--charts", action="store_true",
                   help="draw the PNG charts of every run of a sweep too (off by default)")
    p.add_argument("--config", help="config file")
    p.add_argument("--data-dir", help="folder holding market.db")
    return p


def parse_params(items: list[str]) -> dict[str, list[str]]:
    grid: dict[str, list[str]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise BacktestError(f"--param {item!r}: write it as name=value (or name=v1,v2 "
                                "for a sweep)")
        values = [v.strip() for v in value.split(",") if v.strip()]
        grid.setdefault(name, [])
        grid[name] += [v for v in values if v not in grid[name]]
    return grid


def build_optimize_parser() -> argparse.ArgumentParser:
    from app.backtest.optimize import OBJECTIVES

    p = build_parser()
    p.prog = "autotrader backtest optimize"
    for action in p._actions:  # the same option, read differently here
        if action.dest == "param":
            action.help = ("a parameter to search: name=start:stop:step (or start..stop:step; "
                           "both ends included) or name=v1,v2,...; repeat for each parameter")
        elif action.dest == "tickers":
            action.help = "the ticker symbol (one)"
    p.description = ("Walk-forward optimisation: on each fold, search the parameters on "
                     "--train sessions, run the best on the next --test sessions, and report "
                     "in-sample vs out-of-sample.")
    p.add_argument("--train", type=int, required=True, help="training sessions per fold")
    p.add_argument("--test", type=int, required=True, help="test sessions per fold")
    p.add_argument("--objective", choices=OBJECTIVES, default="sharpe",
                   help="what the search maximises (default sharpe)")
    p.add_argument("--search", choices=("grid", "random", "optuna"), default="grid",
                   help="every point of the grid (default), --trials random ones, or --trials "
                        "chosen by Optuna's TPE sampler (large spaces; needs optuna)")
    p.add_argument("--trials", type=int,
                   help="random/optuna search: points tried per fold (default 50)")
    p.add_argument("--seed", type=int, default=0,
                   help="random/optuna search: seed (default 0)")
    return p


def main(argv: list[str]) -> int:
    argv = argv[1:] if argv and argv[0] == "backtest" else argv
    optimizing = bool(argv) and argv[0] == "optimize"
    args = (build_optimize_parser() if optimizing else build_parser()).parse_args(
        argv[1:] if optimizing else argv)
    args.optimizing = optimizing
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        # Other plugins that fail to import do not matter here; the chosen one is checked.
        logging.getLogger("app.engine.plugins").setLevel(logging.ERROR)
    try:
        return _main(args)
    except BacktestError as e:
        print(f"autotrader backtest: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a report folder that cannot be written, a disk full, ...
        where = f" ({e.filename})" if e.filename else ""
        print(f"autotrader backtest: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nautotrader backtest: interrupted", file=sys.stderr)
        return 130


def _main(args: argparse.Namespace) -> int:
    from app.backtest.report import charts_unavailable
    from app.backtest.run import Spec, check_params, check_spec, resolve_plugin
    from app.backtest.sweep import combinations
    from app.config import load_settings

    missing = None if args.no_charts else charts_unavailable()
    if missing:
        print(f"autotrader backtest: {missing}", file=sys.stderr)
        args.no_charts = True

    settings = load_settings(args.config, overrides={"data_dir": args.data_dir,
                                                     "_explicit_config": bool(args.config)})
    tickers = [t.strip() for arg in args.tickers for t in arg.split(",") if t.strip()]
    if args.csv and len(args.csv) != len(tickers):
        raise BacktestError(f"{len(args.csv)} --csv file(s) for {len(tickers)} ticker(s); give "
                            "one CSV per ticker, in the same order")
    grid = parse_params(args.param)
    base = Spec(
        plugin=args.plugin, ticker=tickers[0], capital=args.capital, start=args.start,
        end=args.end, market_db=settings.market_db_path,
        plugin_dirs=tuple(settings.plugin_dirs),
        path="vector" if args.vector else "exact" if args.exact or args.guards else "event",
        fill=args.fill,
        slippage_bps=(settings.engine.slippage_bps if args.slippage_bps is None
                      else args.slippage_bps),
        commission_per_share=(settings.engine.commission_per_share if args.commission is None
                              else args.commission),
        timeout_s=settings.engine.plugin_timeout, strict_cash=args.strict_cash,
        tz=args.tz, splits=tuple(args.split), adjusted=args.adjusted,
        **(_risk_limits(settings) if args.guards else {}))
    if args.guards and args.vector:
        raise BacktestError("--guards runs the live engine each minute: it cannot be combined "
                            "with --vector")
    check_spec(base)
    info = resolve_plugin(base.plugin, base.plugin_dirs)
    if args.optimizing:
        if len(tickers) > 1:
            raise BacktestError(f"optimize works on one ticker at a time; got {len(tickers)} "
                                f"({', '.join(tickers)}): run it once per ticker")
        return _optimize(replace(base, csv=args.csv[0] if args.csv else None), args)
    combos = combinations(grid)
    for c in combos:  # unknown names and bad values fail before anything runs
        check_params(info, c)
    specs = [replace(base, ticker=t, params=c, csv=args.csv[k] if args.csv else None)
             for k, t in enumerate(tickers) for c in combos]
    if len(specs) == 1:
        return _single(specs[0], args)
    return _sweep(specs, args)


def _optimize(base, args: argparse.Namespace) -> int:  # noqa: ANN001
    from app.backtest.optimize import format_report, optimize, parse_space, write_report
    from app.backtest.run import check_params, load_bars, resolve_plugin

    space = parse_space(args.param)
    if not space:
        raise BacktestError("give the parameters to search with --param name=start:stop:step")
    info = resolve_plugin(base.plugin, base.plugin_dirs)
    for name, values in space.items():  # unknown names and bad values fail before any run
        for v in values:
            check_params(info, {name: v})
    data = load_bars(base)
    out = args.out or Path("backtest-out") / f"{base.plugin}-{base.ticker}-optimize"
    out.mkdir(parents=True, exist_ok=True)
    print(f"Walk-forward optimisation of {base.plugin} on {base.ticker}: train "
          f"{args.train} sessions, test {args.test}, objective {args.objective}")
    rep = optimize(base, data, space, train=args.train, test=args.test,
                   objective=args.objective, search=args.search, trials=args.trials,
                   seed=args.seed, workers=args.workers, dask=args.dask)
    paths = write_report(rep, out, charts=not args.no_charts)
    print(format_report(rep))
    print(f"Report: {out}/ ({', '.join(p.name for p in paths)})")
    return 0


def _conventions(spec) -> str:  # noqa: ANN001
    where = "the open of bar t" if spec.fill == "open" else "the last close before t"
    return (f"Fills: a decision at minute t (seeing bars before t) fills at {where}, "
            f"slippage {spec.slippage_bps:g} bps, commission {spec.commission_per_share:g}/share."
            f"\nSharpe/Sortino: {CONVENTIONS['sharpe_sortino']}.")


def _single(spec, args: argparse.Namespace) -> int:  # noqa: ANN001
    from app.backtest.pool import run_isolated
    from app.backtest.run import load_bars
    from app.backtest.sweep import Job, job_death, job_fn, plugin_source

    data = load_bars(spec)
    out = args.out or Path("backtest-out") / f"{spec.plugin}-{spec.ticker}"
    out.mkdir(parents=True, exist_ok=True)  # fail before the run, not after it
    what = {"vector": "vectorised strategy",
            "exact": "the live engine's tick, minute by minute",
            "event": "the plugin's own code, minute by minute"}[spec.path]
    print(f"Backtest {spec.plugin} on {spec.ticker} ({what})")
    # In a child process: a plugin that exits, crashes or hangs ends this run with a report
    # of what it did up to then, not the command with a traceback (or nothing).
    job = Job(spec, data, out, not args.no_charts, plugin_source(spec), flat=True,
              progress=True)
    r = run_isolated(job_fn, [job], job_death, workers=1)[0]
    if not r.get("ok"):
        raise BacktestError(r["error"])
    print(r["table"])
    print(_conventions(spec))
    print(f"Report: {out}/ ({', '.join(r['files'])})")
    if r["all_failed"]:
        print("autotrader backtest: every call of the plugin failed (see the problems "
              "above); nothing was traded", file=sys.stderr)
        return 2
    if r["stopped"]:
        print(f"autotrader backtest: {r['stopped']}", file=sys.stderr)
        return 1
    return 0


def _risk_limits(settings: Any) -> dict[str, Any]:
    """The limits the app runs with in this data folder (the engine's read at start: the
    config's [risk] with the changes stored by the Settings screen or 'autotrader guards'),
    and where they come from, for the Spec."""
    from app.engine.guard_edit import limits_in_force
    from app.engine.guards import RiskLimits

    base = RiskLimits.from_settings(getattr(settings, "risk", None))
    limits, source = limits_in_force(settings.system_db_path, base)
    print(f"Risk guards: {source}")
    return {"risk": limits, "risk_source": source}


def _sweep(specs: list, args: argparse.Namespace) -> int:
    from app.backtest.report import format_sweep
    from app.backtest.sweep import run_sweep

    out = args.out or Path("backtest-out") / f"{specs[0].plugin}-sweep"
    print(f"Sweep: {len(specs)} backtests of {specs[0].plugin} ({specs[0].path} path)")

    def done(n: int, total: int, spec, row) -> None:  # noqa: ANN001
        tag = " ".join(f"{k}={v}" for k, v in spec.params.items())
        status = row[2] if isinstance(row, tuple) else f"failed: {row}"
        print(f"  [{n}/{total}] {spec.ticker} {tag}: {status}", file=sys.stderr)

    results = run_sweep(specs, out, workers=args.workers, dask=args.dask,
                        charts=args.charts and not args.no_charts, on_done=done)
    rows = [r[1] for r in results if r[1] is not None]
    failed = [(r[0], r[2]) for r in results if r[1] is None]
    for spec, _row, rep in results:
        if isinstance(rep, dict) and rep.get("stopped"):
            failed.append((spec, rep["stopped"]))
        elif isinstance(rep, dict) and rep.get("errors") and not rep.get("refused") and \
                not sum(rep.get("decisions", {}).values()):
            failed.append((spec, "every call of the plugin failed"))
    print(format_sweep(rows))
    for spec, why in failed:
        print(f"  failed: {spec.ticker} {spec.params}: {why}", file=sys.stderr)
    if len(failed) == len(results):
        _write_summary(out, results)
        return 2
    _write_summary(out, results)
    print(_conventions(specs[0]))
    print(f"Reports: {out}/ (summary.csv, one folder per run)")
    return 0 if not failed else 1


def _write_summary(out: Path, results: list) -> None:
    import csv
    import json

    from app.backtest.report import SWEEP_COLUMNS

    out.mkdir(parents=True, exist_ok=True)
    with (out / "summary.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(SWEEP_COLUMNS)
        for _, row, _ in results:
            if row is not None:
                w.writerow(row)
    reports = [r[2] if r[1] is not None else {"error": r[2], "ticker": r[0].ticker,
                                               "params": r[0].params} for r in results]
    (out / "summary.json").write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")
