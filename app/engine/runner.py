"""The composition root per mode, and the headless run.

demo        SimulatedClock + SyntheticFeed + SimulatedBroker (all state in the data folder; the
            simulated time is saved each tick so a restart resumes where it stopped)
paper/live  WallClock + AlpacaStream + AlpacaBroker (imported lazily: no alpaca-py in demo)
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from app.broker.base import ReconcileReport
from app.clock import Clock, SimulatedClock, WallClock
from app.config import Settings
from app.engine.facade import LAST_TICK_KEY, Engine, EngineError, TickResult
from app.engine.guards import RiskLimits
from app.engine.sandbox import set_plugin_memory_mb
from app.engine.scheduler import MINUTE, Scheduler
from app.engine.storage import MB, DiskWatch, classify, start_wait_message
from db.calendar import MarketCalendar, exchange_time, nyse
from db.market import MarketStore
from db.system import SystemStore, Transaction
from db.timeutil import parse_iso, utcnow

logger = logging.getLogger(__name__)

DEMO_SEEDED_KEY = "demo.seeded"
DEMO_PLUGIN = "sma_crossover"


def demo_start_time(settings: Settings, system: SystemStore, calendar: MarketCalendar) -> datetime:
    """Where the simulated clock starts: just after the last minute already run, else the open
    of ``demo.start_date``'s session or of the most recent completed session."""
    last = system.get_setting(LAST_TICK_KEY)
    if last:
        return parse_iso(last) + timedelta(minutes=1)
    if settings.demo.start_date:
        day = datetime.strptime(settings.demo.start_date, "%Y-%m-%d").date()
        s = calendar.session_on(day)
        if s is None:
            s = calendar.current_or_next_session(
                datetime(day.year, day.month, day.day, tzinfo=utcnow().tzinfo))
        return s.open
    return calendar.previous_session(utcnow()).open


class AlreadyRunningError(EngineError):
    pass


def hold_instance_lock(data_path: Path) -> Callable[[], None]:
    """Take the data folder's single-instance lock; return its release. Two processes trading
    the same algorithms would each act on every minute (their client order ids keep the
    broker from doubling orders, but one engine per folder is the rule). The kernel drops the
    lock when the process dies, even by SIGKILL."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the order ids still prevent duplicates
        return lambda: None
    data_path.mkdir(parents=True, exist_ok=True)
    path = data_path / "engine.lock"
    f = open(path, "a+")  # noqa: SIM115 - held open for the engine's lifetime
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        other = f.read().strip() or "?"
        f.close()
        raise AlreadyRunningError(
            f"another AutoTrader (pid {other}) is running on the data folder {data_path}; "
            "stop it first") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()

    def release() -> None:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        finally:
            f.close()

    return release


def disk_watch(settings: Settings) -> DiskWatch:
    e = settings.engine
    return DiskWatch(settings.data_path, warn_bytes=int(e.disk_warn_mb * MB),
                     pause_bytes=int(e.disk_pause_mb * MB), every=e.disk_check_minutes * 60.0)


def missing_plugin_folders(settings: Settings) -> list[str]:
    """One line (what happens, what to do) per configured plugin folder that is missing."""
    out = []
    for d in settings.plugin_dirs:
        if not d.is_dir():
            out.append(f"the plugin folder {d} is missing: algorithms using its plugins wait "
                       "(status error) and start by themselves once it is back; create it, "
                       f"mount it, or fix [engine] plugin_dir in {settings.config_path}")
    return out


def build_engine(settings: Settings, *, clock: Clock | None = None) -> tuple[Engine, Scheduler]:
    """Build the engine for ``settings.effective_mode`` (not started: call ``engine.start()``).

    The free disk is checked first: a full disk is logged with what to do and becomes the
    engine's ``storage_problem`` (trading waits until space is back); a missing plugin
    folder is logged with what to do."""
    disk = disk_watch(settings)
    full = disk.check(force=True)
    if full:
        logger.error("%s", full)
    for line in missing_plugin_folders(settings):
        logger.error("%s", line)
    release = hold_instance_lock(settings.data_path)
    set_plugin_memory_mb(settings.engine.plugin_memory_mb)
    try:
        engine, scheduler = _build(settings, clock)
    except BaseException:
        release()
        raise
    engine.call_on_close(release)
    engine.disk = disk
    engine.storage_problem = full
    engine.stale_after = timedelta(seconds=settings.engine.stale_order_seconds)
    return engine, scheduler


DATA_MODE_KEY = "data_mode"


def claim_data_folder(system: SystemStore, mode: str, folder: Path) -> None:
    """Tie a data folder to one mode for good.

    A demo's algorithms, simulated fills and synthetic bars must never be traded against a real
    account, and paper algorithms must not start placing live orders: a folder that has run in
    one mode refuses the others (the default folders are per mode, see ``Settings.data_path``).
    """
    used = system.get_setting(DATA_MODE_KEY)
    if used is None:
        system.set_setting(DATA_MODE_KEY, mode)
    elif used != mode:
        raise EngineError(
            f"the data folder {folder} holds a {used.upper()} session; it cannot run in "
            f"{mode.upper()} mode (its algorithms, orders and bars belong to {used}). Use a "
            f"different data folder (--data-dir or AUTOTRADER_DATA_DIR) for {mode} mode."
        )


def _build(settings: Settings, clock: Clock | None) -> tuple[Engine, Scheduler]:
    mode = settings.effective_mode
    calendar = nyse()
    system = SystemStore(settings.system_db_path)
    try:
        claim_data_folder(system, mode, settings.data_path)
    except EngineError:
        system.close()
        raise
    market = MarketStore(settings.market_db_path, calendar)
    before_tick = None
    start = None
    if mode == "demo":
        from app.broker.demo_universe import known_symbols
        from app.broker.simulated import SimulatedBroker
        from app.marketdata.synthetic import SyntheticFeed

        start = demo_start_time(settings, system, calendar)
        if clock is None:
            # The simulated day waits for the start-up (however long it takes) at its first
            # tick's time, so the first minutes' orders are not stale on arrival.
            first_tick = (start.replace(second=0, microsecond=0)
                          + timedelta(seconds=settings.engine.tick_offset_seconds))
            clock = SimulatedClock(start, settings.demo.speed,
                                   hold_at=first_tick if first_tick >= start else None)
        from app.marketdata.replay import ReplayFeed, replay_source

        replay = replay_source(settings.data_path)  # a folder of ``run --replay DATE``
        splits = demo_splits(settings, system, market)
        feed: Any = (ReplayFeed(market, clock, calendar, replay, splits=splits) if replay else
                     SyntheticFeed(market, clock, calendar, seed=settings.demo.seed,
                                   splits=splits))
        # The demo's market lists its symbols (a replay: the stored day's); any other is
        # refused as unknown. Existing algorithms' and configured tickers stay known.
        listed = MarketStore(replay.market_db, calendar, readonly=True) if replay else None
        try:
            symbols = known_symbols(
                system, [*settings.demo.tickers, *(t for t, *_ in splits)],
                listed=listed.tickers() if listed else None)
        finally:
            if listed:
                listed.close()
        broker: Any = SimulatedBroker(system, market, clock,
                                      starting_cash=settings.demo.starting_cash,
                                      slippage_bps=settings.engine.slippage_bps,
                                      commission_per_share=settings.engine.commission_per_share,
                                      symbols=symbols, calendar=calendar)
        before_tick = feed.ensure_until
    elif mode in ("paper", "live"):
        from app.broker.alpaca import AlpacaBroker
        from app.marketdata.stream import AlpacaStream

        clock = clock or WallClock()
        broker = AlpacaBroker.from_settings(settings)
        feed = AlpacaStream(settings, market, calendar)
    else:
        raise EngineError(f"mode {mode!r} cannot run live (backtests use app.backtest)")
    engine = Engine(mode=mode, system=system, market=market, broker=broker, feed=feed,
                    clock=clock, calendar=calendar, plugin_dirs=settings.plugin_dirs,
                    plugin_timeout=settings.engine.plugin_timeout, before_tick=before_tick,
                    risk=RiskLimits.from_settings(settings.risk))
    if mode == "demo":
        ensure_demo_algorithms(engine, settings)
    scheduler = Scheduler(engine, clock, calendar, settings.engine.tick_offset_seconds)
    if mode == "demo" and start is not None and scheduler.last_minute is None:
        # However long the start-up takes, the simulated day starts with the open's tick.
        scheduler.last_minute = start.replace(second=0, microsecond=0) - MINUTE
    return engine, scheduler


def demo_splits(settings: Settings, system: SystemStore,
                market: MarketStore) -> list[tuple[str, str, float, float]]:
    """``demo.splits`` put on the simulated market's schedule (read by the engine like
    Alpaca's announcements) and returned for the synthetic prices."""
    from app.broker.sim_corporate import SimCorporateActions, parse_split

    out = []
    for text in settings.demo.splits:
        try:
            out.append(parse_split(text))
        except ValueError as e:
            raise EngineError(f"demo.splits: {e}") from None
    sim = SimCorporateActions(system, market)
    for ticker, day, new, old in out:
        sim.schedule_split(ticker, day, new, old)
    return out


def ensure_demo_algorithms(engine: Engine, settings: Settings) -> list[int]:
    """On the very first demo start (no algorithm ever created) add one SMA crossover per demo
    ticker, each with a fifth of the simulated cash. Never again after that."""
    system = engine.system
    if system.get_setting(DEMO_SEEDED_KEY) or system.algorithm_count():
        return []
    ids = []
    capital = round(settings.demo.starting_cash / 5, 2)
    for ticker in settings.demo.tickers:
        try:
            ids.append(engine.create_algorithm(DEMO_PLUGIN, ticker, capital,
                                               name=f"Demo SMA {ticker}"))
        except EngineError as e:
            logger.warning("demo algorithm on %s not created: %s", ticker, e)
    system.set_setting(DEMO_SEEDED_KEY, "1")
    logger.info("first demo start: created %d demo algorithms (simulated money)", len(ids))
    return ids


class ConsolePrinter:
    """Prints each tick's decisions and fills (the headless run's output).

    Fills recorded during a tick print under that tick's line; fills that arrive between
    ticks (a broker filling an order later) print when they arrive."""

    def __init__(self, engine: Engine, out: TextIO | None = None) -> None:
        self.engine = engine
        self.out: TextIO | None = out or sys.stdout
        self._lock = threading.Lock()

    def _name(self, algo_id: int) -> str:
        try:
            return self.engine.algorithm_view(algo_id).name
        except EngineError:
            return f"algorithm {algo_id}"

    def _fill_line(self, f: Transaction) -> str:
        return (f"    fill: {self._name(f['algo_id'])} {f['type']} {f['shares']} {f['ticker']} "
                f"@ {f['price']:.4f}")

    def on_fill(self, algo_id: int, tx: Transaction) -> None:
        if not self.engine.in_tick:
            self._print(self._fill_line(tx) + "  (late fill)")

    def on_tick(self, r: TickResult) -> None:
        t = exchange_time(r.minute).strftime("%Y-%m-%d %H:%M ET")
        parts = []
        for d in r.decisions:
            if d["refused"]:
                parts.append(f"{d['name']}: REFUSED ({d['refused']})")
            elif d["action"] == "hold":
                parts.append(f"{d['name']}: hold")
            else:
                parts.append(f"{d['name']}: {str(d['action']).upper()} {d['shares']}")
        lines = [f"[{t}] " + (" | ".join(parts) or "no running algorithms")
                 + f"  ({r.latency_ms:.1f} ms)"]
        lines += [self._fill_line(f) for f in r.fills]
        refused = {d["algo_id"] for d in r.decisions if d["refused"]}
        lines += [f"    problem: {self._name(a)}: {why}" for a, why in r.errors.items()
                  if a not in refused]
        self._print("\n".join(lines))

    def _print(self, text: str) -> None:
        """Print; a closed console (``| head``) stops the printing, not the engine."""
        with self._lock:
            if self.out is None:
                return
            try:
                print(text, file=self.out, flush=True)
            except (BrokenPipeError, ValueError, OSError) as e:
                logger.warning("console output stopped (%s); the log file goes on", e)
                self.out = None


def confirm_live(settings: Settings, interactive: bool | None = None,
                 ask: Callable[[str], str] | None = None) -> bool:
    """Ask for the PIN in the terminal before a headless LIVE run; print why when refused."""
    import getpass

    from app.security import PinGuard, confirm_live_in_terminal

    system = SystemStore(settings.system_db_path)
    try:
        ok, message = confirm_live_in_terminal(
            PinGuard(system), sys.stdin.isatty() if interactive is None else interactive,
            ask or getpass.getpass)
    finally:
        system.close()
    print(message, file=sys.stdout if ok else sys.stderr)
    if not ok:
        logger.warning("live run refused: %s", message)
    return ok


# Exit codes of ``autotrader`` (README, "Exit codes"); systemd restarts only on EXIT_INTERNAL.
EXIT_OK = 0          # clean stop: Ctrl+C/SIGTERM, --minutes reached, end of the calendar
EXIT_INTERNAL = 1    # an unexpected error (a bug): the traceback is in the log
EXIT_CONFIG = 2      # configuration or input error: fix it, a restart will not help
EXIT_INTERRUPTED = 130

# A broker that cannot be reached or refuses the keys at start-up is retried after these
# many seconds, doubling up to the maximum (the service stays up; it never crash-loops).
BROKER_RETRY_FIRST_S = 2.0
BROKER_RETRY_MAX_S = 300.0


def broker_problem(error: BaseException, settings: Settings) -> tuple[str, str]:
    """(state, what to do) for a failed first contact with the broker."""
    text = str(error)
    status = getattr(error, "status", None)
    low = text.lower()
    if status in (401, 403) or any(w in low for w in (
            "401", "403", "not authorized", "unauthorized", "forbidden", "api key")):
        return ("the broker refused the API keys",
                "check APCA_API_KEY_ID / APCA_API_SECRET_KEY (or the config's [alpaca] keys) "
                f"and that they are {settings.effective_mode} keys")
    url = getattr(settings.alpaca, "trading_url", "") or "Alpaca"
    return (f"the broker at {url} cannot be reached",
            "check the network connection (DNS, firewall, proxy); trading starts by itself "
            "once it answers")


def wait_for_broker(engine: Engine, settings: Settings, stop: threading.Event,
                    printer: ConsolePrinter) -> Any:
    """Start the engine once the broker answers; until then say why and what to do (once
    per change of state), retrying with backoff. None if ``stop`` is set first."""
    from app.broker.base import BrokerError

    delay = BROKER_RETRY_FIRST_S
    shown = None
    tries = 0
    while not stop.is_set():
        tries += 1
        try:
            engine.account_summary()
            report = engine.start()
            if shown is not None:
                logger.warning("the broker answers again after %d tries: starting", tries)
                printer._print(f"broker OK after {tries} tries: trading starts")
            return report
        except (EngineError, BrokerError, OSError) as e:
            state, todo = broker_problem(e, settings)
            if state != shown:
                shown = state
                logger.error("%s (%s); %s. Retrying in %g s, then with backoff up to %g s",
                             state, e, todo, delay, BROKER_RETRY_MAX_S)
                printer._print(f"WAITING: {state} ({e}). What to do: {todo}. "
                               f"Retrying in {delay:g} s.")
            else:
                logger.info("%s (try %d): %s; next try in %g s", state, tries, e, delay)
        if stop.wait(delay):
            break
        delay = min(delay * 2, BROKER_RETRY_MAX_S)
    return None


DISK_RETRY_FIRST_S = 5.0
DISK_RETRY_MAX_S = 300.0


def build_when_disk_allows(settings: Settings,
                           sleep: Callable[[float], Any] | None = None) -> Any:
    """``build_engine``, or an exit code: EXIT_CONFIG (one line on stderr, what to do) for
    an unusable data folder or config; a full disk or a DB locked by another process is waited
    out, retried with backoff."""
    import sqlite3
    import time

    from db.connection import StorageError

    sleep = sleep or time.sleep
    delay, shown = DISK_RETRY_FIRST_S, False
    while True:
        try:
            return build_engine(settings)
        except EngineError as e:
            print(f"autotrader: {e}", file=sys.stderr)
            return EXIT_CONFIG
        except (StorageError, sqlite3.Error, OSError) as e:
            kind = classify(e)
            if kind != "locked" and (kind == "full" or "disk is full" in str(e)
                                     or disk_watch(settings).check(force=True) is not None):
                kind = "full"
            if kind not in ("full", "locked"):
                msg = (f"the data folder {settings.data_path} cannot be used: {e}; fix it or "
                       "choose another with --data-dir (or data_dir in the config)")
                logger.error("%s", msg)
                print(f"autotrader: {msg}", file=sys.stderr)
                return EXIT_CONFIG
            if not shown:  # a DB locked by another process is waited out like a full disk
                shown = True
                msg = start_wait_message(kind, settings.data_path, e)
                logger.error("%s", msg)
                print(f"WAITING: {msg}", file=sys.stderr)
            sleep(delay)
            delay = min(delay * 2, DISK_RETRY_MAX_S)


def _limit_run(engine: Engine, scheduler: Scheduler, minutes: float,
               stop: threading.Event) -> None:
    """``--minutes``: exactly N ticks; on a wall clock also at most N minutes (a closed
    market)."""
    scheduler.max_ticks = max(1, math.ceil(minutes))
    if engine.mode == "demo":
        return
    deadline = engine.clock.now() + timedelta(minutes=minutes)

    def stop_at_deadline() -> None:
        if engine.clock.sleep_until(deadline, stop):
            logger.info("--minutes %g reached", minutes)
            stop.set()

    threading.Thread(target=stop_at_deadline, name="deadline", daemon=True).start()


def _print_start(engine: Engine, report: ReconcileReport, printer: ConsolePrinter) -> None:
    """The console's first lines: reconcile differences, LIVE warning, account, algorithms."""
    if not report.clean:
        print("warning: positions differ from the broker: " + ", ".join(
            f"{d.symbol} ledger {d.ledger:g} / broker {d.broker:g}"
            for d in report.position_diffs), file=sys.stderr)
    replay = getattr(engine.feed, "replay_day", None)  # ``run --replay DATE``
    mode = f"REPLAY of {replay}" if replay else engine.mode.upper()
    if engine.mode == "live":
        logger.warning("LIVE trading: orders go to your real Alpaca account")
        printer._print("*** LIVE MODE: these algorithms trade REAL MONEY. Ctrl+C stops them "
                       "(positions are kept). ***")
    acct = engine.account_summary()
    printer._print(
        f"AutoTrader {mode} ({engine.broker.name} broker"
        + (", SIMULATED MONEY" if engine.mode == "demo" else "")
        + f"): cash {acct['cash']:,.2f}, free {acct['free']:,.2f}; clock "
        f"{exchange_time(engine.clock.now()):%Y-%m-%d %H:%M:%S ET} x{engine.clock.speed:g}")
    for v in engine.algorithm_views():
        printer._print(f"  #{v.id} {v.name}: {v.plugin} on {v.ticker}, {v.status}, value "
                       f"{v.value:,.2f}, position {v.position}")


def run_headless(settings: Settings, minutes: float | None = None,
                 start_control: Callable[[Engine, Path], Any] | None = None) -> int:
    """Run the engine without a window until Ctrl+C/SIGTERM (or ``minutes`` ticks: exactly that
    many in the demo; on a wall clock at most that many, within that many minutes).

    ``start_control(engine, data_path)`` opens the ``autotrader algo`` channel; the caller
    passes it because app/control sits above the engine (tests/layers)."""
    if settings.effective_mode == "live" and not confirm_live(settings):
        return EXIT_CONFIG
    built = build_when_disk_allows(settings)
    if isinstance(built, int):
        return built
    engine, scheduler = built
    for line in missing_plugin_folders(settings):
        print(f"warning: {line}", file=sys.stderr)
    if engine.storage_problem:
        print(f"WAITING: {engine.storage_problem}", file=sys.stderr)
    stop = threading.Event()

    def request_stop(signum: int) -> None:
        logger.info("signal %d: finishing the tick in progress, then exiting", signum)
        stop.set()

    def on_signal(signum: int, _frame: Any) -> None:
        # The handler runs on the main thread between two bytecodes, possibly while that thread
        # holds ``stop``'s internal lock inside ``stop.wait()`` (the scheduler's sleep): calling
        # ``stop.set()`` here could then deadlock. Another thread sets it once the lock is free.
        threading.Thread(target=request_stop, args=(signum,), name="signal-stop",
                         daemon=True).start()

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not the main thread
            pass
    printer = ConsolePrinter(engine)
    engine.add_listener(printer)
    if start_control is not None:  # ``autotrader algo ...``; closed with the engine
        start_control(engine, settings.data_path)
    try:
        report = wait_for_broker(engine, settings, stop, printer)
        if report is None:  # stopped (a signal) before the broker answered
            return EXIT_OK
        if minutes is not None:  # counted from the start of trading
            _limit_run(engine, scheduler, minutes, stop)
        _print_start(engine, report, printer)
        scheduler.run(stop)
        for v in engine.algorithm_views():
            printer._print(f"  #{v.id} {v.name}: position {v.position}, cash {v.cash:,.2f}, "
                           f"value {v.value:,.2f}, P&L {v.pnl:+,.2f} ({v.pnl_pct:+.2f}%)")
    finally:
        engine.close()
        engine.system.close()
        engine.market.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return EXIT_OK
