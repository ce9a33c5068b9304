"""``autotrader data fetch|list``: years of minute bars for backtests, without a CSV.

``fetch`` downloads Alpaca's minute bars for several tickers at once (one request per chunk of
sessions, alpaca-py following every page), waits out 429s (``Backfiller``), keeps the regular
session only, and stores them in the market DB (an upsert keyed by ticker and minute) or in one
CSV per ticker in the backtest's format. It is resumable: after each chunk the job's state
(chunks done, and for CSVs each file's length) is written to ``history-fetch.json`` in the data
folder; running the same command again skips what is done and cuts a CSV back to its last
recorded length, so every bar is stored exactly once even after Ctrl+C or a crash.

Splits inside the range (a split in the middle of the fetched years): the bars are fetched raw
(``adjustment=raw``) and Alpaca's announced splits of the tickers, from the range's start (or
the oldest stored bar) to today, are read first through alpaca-py's corporate-actions client.
Into the market DB each one is applied as the engine applies a split on its ex-date
(``db.corporate.adjust_bars``: the stored bars before the ex-date scaled, recorded under
Alpaca's action id, so the engine's own check of the same split scales nothing twice); the
fetched rows of older minutes are then scaled on insert (``MarketStore``'s write). So charts,
backtests, replays and the plugins' history see one price basis, today's, with no cliff.
Into CSVs the rows are scaled the same way and the files say so (backtest them with
``--adjusted``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from app.config import Settings
from db.calendar import MarketCalendar, Session, exchange_time
from db.market import BadTickerError, MarketStore, check_ticker

logger = logging.getLogger(__name__)

STATE_FILE = "history-fetch.json"
CSV_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")  # app/backtest/bars.py
# A split source: (tickers, first ex-date, last ex-date) -> announced splits, as
# ``app.broker.alpaca_clients.corporate_actions_from`` gives them (kind, ticker, ex_date,
# old_rate, new_rate, id).
SplitSource = Callable[[list[str], date, date], list[dict[str, Any]]]
SESSIONS_PER_CHUNK = 5  # ~2,000 bars per ticker per request: a few pages, a small loss on a crash


class FetchError(RuntimeError):
    pass


@dataclass
class Progress:
    sessions_total: int
    sessions_done: int = 0
    bars: int = 0
    started: float = field(default_factory=time.monotonic)
    skipped: int = 0  # sessions already done by an earlier run
    splits: list[str] = field(default_factory=list)  # the splits the prices are adjusted for

    @property
    def rate(self) -> float:
        el = time.monotonic() - self.started
        return self.bars / el if el > 0 else 0.0

    @property
    def eta(self) -> float | None:
        fresh = self.sessions_done - self.skipped
        left = self.sessions_total - self.sessions_done
        if fresh <= 0:
            return None
        return (time.monotonic() - self.started) / fresh * left


def job_key(tickers: list[str], start: date, end: date, feed: str, target: str) -> str:
    return f"{','.join(sorted(tickers))}|{start}|{end}|{feed}|{target}"


class JobState:
    """The resumable state, one JSON file (0600) in the data folder, rewritten atomically."""

    def __init__(self, path: Path, key: str) -> None:
        self.path, self.key = path, key
        try:
            all_ = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            all_ = {}
        self._all: dict[str, Any] = all_ if isinstance(all_, dict) else {}
        job = self._all.get(key) or {}
        self.done: set[str] = set(job.get("done", []))
        self.csv_sizes: dict[str, int] = dict(job.get("csv_sizes", {}))

    def save(self) -> None:
        self._all[self.key] = {"done": sorted(self.done), "csv_sizes": self.csv_sizes,
                               "updated": datetime.now(UTC).isoformat(timespec="seconds")}
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(self._all, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def finish(self) -> None:
        self._all.pop(self.key, None)
        if self._all:
            self.save()
            self._all.pop(self.key, None)
        with contextlib.suppress(OSError):
            if not self._all:
                self.path.unlink()


def chunks(sessions: list[Session], size: int) -> list[list[Session]]:
    return [sessions[i:i + size] for i in range(0, len(sessions), size)]


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class HistoryFetch:
    """Fetch [start, end] (exchange dates, inclusive) for ``tickers``; into ``market`` or, with
    ``csv_dir``, into ``csv_dir/TICKER.csv``. ``fetch(tickers, first, last)`` returns
    {ticker: [(ticker, ts, o, h, l, c, v), ...]} for [first, last) (a ``Backfiller``'s)."""

    def __init__(self, fetch: Callable[[list[str], datetime, datetime], dict[str, list[tuple]]],
                 calendar: MarketCalendar, state_dir: Path, *, market: MarketStore | None = None,
                 csv_dir: Path | None = None, feed: str = "iex",
                 sessions_per_chunk: int = SESSIONS_PER_CHUNK,
                 on_progress: Callable[[Progress], None] | None = None,
                 splits: SplitSource | None = None,
                 today: Callable[[], date] | None = None) -> None:
        if (market is None) == (csv_dir is None):
            raise ValueError("either a market DB or a CSV folder")
        self._fetch, self.calendar, self.market = fetch, calendar, market
        self.csv_dir = csv_dir
        self.state_dir = state_dir
        self.feed = feed
        self.sessions_per_chunk = max(1, sessions_per_chunk)
        self.on_progress = on_progress
        self._splits = splits
        self._today = today or (lambda: exchange_time(datetime.now(UTC)).date())
        self._factors: dict[str, list[tuple[int, float]]] = {}  # CSV target: ticker -> splits

    def run(self, tickers: list[str], start: date, end: date) -> Progress:
        tickers = sorted({check_ticker(t.strip().upper()) for t in tickers if t.strip()})
        if not tickers:
            raise FetchError("no ticker given")
        if end < start:
            raise FetchError(f"--end {end} is before --start {start}")
        sessions = self.calendar.sessions_between(start, end)
        target = f"csv:{self.csv_dir.resolve()}" if self.csv_dir else "db"
        splits = self._read_splits(tickers, start)
        key = job_key(tickers, start, end, self.feed, target)
        if self.csv_dir is not None and splits:  # another split basis: other files
            key += "|" + ",".join(sorted(str(a["id"]) for a in splits))
        state = JobState(self.state_dir / STATE_FILE, key)
        prog = Progress(len(sessions))
        prog.splits = self._apply_splits(splits)
        if self.csv_dir is not None:
            self._prepare_csvs(tickers, state)
        for chunk in chunks(sessions, self.sessions_per_chunk):
            name = chunk[0].day.isoformat()
            if name in state.done:
                prog.sessions_done += len(chunk)
                prog.skipped += len(chunk)
                continue
            rows = self._fetch(tickers, chunk[0].open, chunk[-1].close)
            prog.bars += self._store(rows, tickers, state)
            state.done.add(name)
            state.save()
            prog.sessions_done += len(chunk)
            if self.on_progress is not None:
                self.on_progress(prog)
        state.finish()
        logger.info("data fetch %s %s..%s: %d bars in %.1f s (%d sessions, %d already done)",
                    ",".join(tickers), start, end, prog.bars, time.monotonic() - prog.started,
                    len(sessions), prog.skipped)
        return prog

    def _read_splits(self, tickers: list[str], start: date) -> list[dict[str, Any]]:
        """The splits of ``tickers`` effective from ``start`` (or their oldest stored bar)
        to today, oldest first; FetchError when they cannot be read (nothing fetched yet)."""
        if self._splits is None:
            return []
        first = start
        if self.market is not None:
            for t in tickers:
                span = self.market.bar_span(t)
                if span is not None:
                    first = min(first, exchange_time(datetime.fromtimestamp(span[0],
                                                                            UTC)).date())
        today = self._today()
        if first > today:
            return []
        try:
            found = self._splits(tickers, first, today)
        except Exception as e:
            raise FetchError(f"cannot read the splits of {', '.join(tickers)} from Alpaca "
                             f"({e}); nothing was fetched: the prices would not be "
                             "split-adjusted (--raw fetches them unadjusted)") from None
        want = set(tickers)
        return sorted((a for a in found if a.get("kind") in ("forward_split", "reverse_split")
                       and a.get("ticker") in want and str(a.get("ex_date")) <= today.isoformat()
                       and (a.get("old_rate") or 0) > 0 and (a.get("new_rate") or 0) > 0),
                      key=lambda a: (str(a["ex_date"]), str(a["id"])))

    def _apply_splits(self, splits: list[dict[str, Any]]) -> list[str]:
        """Each split onto the market DB's bars (once per Alpaca id), or noted for the CSV
        rows; a line per split."""
        from db.corporate import adjust_bars, ex_epoch

        out = []
        for a in splits:
            factor = float(a["old_rate"]) / float(a["new_rate"])
            ex_ts = ex_epoch(str(a["ex_date"]))
            if self.market is not None:
                n = adjust_bars(self.market, str(a["id"]), a["ticker"], ex_ts, factor)
                if n >= 0:
                    logger.info("data fetch: %s: %d stored bars before %s scaled x%g",
                                a["ticker"], n, a["ex_date"], factor)
            else:
                self._factors.setdefault(a["ticker"], []).append((ex_ts, factor))
            out.append(f"{a['ticker']} {float(a['new_rate']):g}-for-{float(a['old_rate']):g} "
                       f"split on {a['ex_date']}")
        return out

    def _prepare_csvs(self, tickers: list[str], state: JobState) -> None:
        assert self.csv_dir is not None
        self.csv_dir.mkdir(parents=True, exist_ok=True)
        for t in tickers:
            path = self.csv_dir / f"{t}.csv"
            size = state.csv_sizes.get(t)
            if size is None or not path.exists():
                with path.open("w", newline="", encoding="utf-8") as f:
                    csv.writer(f).writerow(CSV_COLUMNS)
                state.csv_sizes[t] = path.stat().st_size
                state.done.clear()  # a file started afresh: its job starts afresh
            elif path.stat().st_size > size:
                with path.open("r+b") as f:  # a chunk written after the last saved state
                    f.truncate(size)
        state.save()

    def _store(self, rows: dict[str, list[tuple]], tickers: list[str], state: JobState) -> int:
        if self.market is not None:
            return sum(self.market.insert_rows(rows.get(t, [])) for t in tickers)
        assert self.csv_dir is not None
        from db.corporate import scale_rows

        n = 0
        for t in tickers:
            kept: Sequence[Sequence[Any]] = sorted(r for r in rows.get(t, []) if self.calendar.session_bounds_epoch(
                int(r[1])) is not None)
            if self._factors.get(t):
                kept = scale_rows(kept, self._factors)
            path = self.csv_dir / f"{t}.csv"
            with path.open("a", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                for r in kept:
                    w.writerow((_iso(int(r[1])), repr(float(r[2])), repr(float(r[3])),
                                repr(float(r[4])), repr(float(r[5])), str(int(r[6]))))
                f.flush()
                os.fsync(f.fileno())
            state.csv_sizes[t] = path.stat().st_size
            n += len(kept)
        return n


def summary(market: MarketStore, calendar: MarketCalendar) -> list[dict[str, Any]]:
    """What the market DB holds per ticker: first/last minute, bars, sessions with no bar."""
    from db.history import bars_in, stored_ranges

    out = []
    conn = market.conn
    for ticker, first, last, count in stored_ranges(conn):
        d0 = exchange_time(datetime.fromtimestamp(first, UTC)).date()
        d1 = exchange_time(datetime.fromtimestamp(last, UTC)).date()
        sessions = calendar.sessions_between(d0, d1)
        gaps = [s.day.isoformat() for s in sessions
                if bars_in(conn, ticker, int(s.open.timestamp()), int(s.close.timestamp())) == 0]
        out.append({"ticker": ticker, "first": _iso(first), "last": _iso(last), "bars": count,
                    "sessions": len(sessions) - len(gaps), "gaps": gaps})
    return out


# The engine's "last minute run" setting (app.engine.model.LAST_TICK_KEY; this layer may not
# import the engine).
DEMO_LAST_TICK_KEY = "engine.last_tick"


def demo_horizon(settings: Settings, calendar: MarketCalendar) -> datetime:
    """The demo's "now": after the last minute the demo ran, else the open it starts at
    (``demo.start_date``, else the last completed session). Bars from then on are its future."""
    from db.system import SystemStore
    from db.timeutil import parse_iso

    system = SystemStore(settings.system_db_path)
    try:
        last = system.get_setting(DEMO_LAST_TICK_KEY)
    finally:
        system.close()
    if last:
        return parse_iso(last) + timedelta(minutes=1)
    now = datetime.now(UTC)
    if settings.demo.start_date:
        day = date.fromisoformat(settings.demo.start_date)
        return calendar.current_or_next_session(datetime(day.year, day.month, day.day,
                                                         tzinfo=UTC)).open
    return calendar.previous_session(now).open


def demo_fetch(settings: Settings, market: MarketStore, calendar: MarketCalendar
               ) -> Callable[[list[str], datetime, datetime], dict[str, list[tuple]]]:
    """``data fetch`` in the demo: the synthetic market's bars (the same ones the demo shows:
    same seed), up to the demo's "now", so the whole flow can be tried without keys."""
    from app.clock import WallClock
    from app.marketdata.synthetic import SyntheticFeed

    gen = SyntheticFeed(market, WallClock(), calendar, seed=settings.demo.seed)
    horizon = int(demo_horizon(settings, calendar).timestamp())

    def fetch(tickers: list[str], lo: datetime, hi: datetime) -> dict[str, list[tuple]]:
        lo_ts, hi_ts = int(lo.timestamp()), min(int(hi.timestamp()), horizon)
        out: dict[str, list[tuple]] = {}
        for t in tickers:
            rows: list[tuple] = []
            for s in calendar.sessions_between(lo.date(), hi.date()):
                arr = gen.session_bars(t, s)
                sel = arr[(arr[:, 0] >= lo_ts) & (arr[:, 0] < hi_ts)]
                rows.extend((t, int(r[0]), float(r[1]), float(r[2]), float(r[3]),
                             float(r[4]), int(r[5])) for r in sel)
            out[t] = rows
        return out

    return fetch


# --- the command line ----------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autotrader data",
                                description="Minute-bar history for backtests.")
    sub = p.add_subparsers(dest="action", required=True)

    def common(c: argparse.ArgumentParser) -> None:
        c.add_argument("--config", help="config file")
        c.add_argument("--data-dir", help="folder for the DBs")
        c.add_argument("--mode", choices=["auto", "demo", "paper", "live"])

    f = sub.add_parser("fetch", help="download minute bars (resumable: run it again)")
    common(f)
    f.add_argument("tickers", help="TICKER[,TICKER...]")
    f.add_argument("--start", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    f.add_argument("--end", required=True, type=date.fromisoformat, help="YYYY-MM-DD (included)")
    f.add_argument("--csv", metavar="DIR", help="write DIR/TICKER.csv instead of the market DB")
    f.add_argument("--sessions-per-request", type=int, default=SESSIONS_PER_CHUNK)
    f.add_argument("--raw", action="store_true",
                   help="do not read Alpaca's splits: store raw prices (a split in the range "
                        "then shows as a cliff)")
    c = sub.add_parser("list", help="what the market DB holds per ticker")
    common(c)
    c.add_argument("--json", action="store_true")
    c = sub.add_parser("prune", help="delete the bars before a date (bounds the DB's size)")
    common(c)
    c.add_argument("--before", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    c = sub.add_parser("export", help="one ticker's bars as CSV (the backtest's format)")
    common(c)
    c.add_argument("ticker")
    c.add_argument("--csv", metavar="FILE", default="-", help="FILE (default: - for stdout)")
    c.add_argument("--start", type=date.fromisoformat, help="YYYY-MM-DD")
    c.add_argument("--end", type=date.fromisoformat, help="YYYY-MM-DD (included)")
    return p


class ProgressLine:
    """bars, bars/s and time left: a progress bar on a terminal, a plain line every few
    seconds elsewhere (app/term.py)."""

    def __init__(self, out: Any = None) -> None:
        from app.term import Progress as Bar

        self._bar = Bar(self._describe, out)
        self._open = False

    @staticmethod
    def _describe(done: int, total: int, f: dict[str, Any]) -> str:
        eta = "?" if f["eta"] is None else f"{f['eta']:,.0f} s"
        return f"{done}/{total} sessions, {f['bars']:,} bars, {f['rate']:,.0f} bars/s, {eta} left"

    def __call__(self, p: Progress) -> None:
        if not self._open:
            self._bar.__enter__()
            self._open = True
        self._bar.update(p.sessions_done, p.sessions_total, bars=p.bars, rate=p.rate,
                         eta=p.eta)
        if p.sessions_done >= p.sessions_total:
            self.close()

    def close(self) -> None:
        if self._open:
            self._open = False
            self._bar.__exit__(None, None, None)


def main(argv: list[str]) -> int:
    from app.config import load_settings
    from app.logging_setup import register_secret, setup_logging
    from db.calendar import nyse

    args = parser().parse_args(argv[1:] if argv and argv[0] == "data" else argv)
    settings: Settings = load_settings(args.config, overrides={
        "data_dir": args.data_dir, "mode": args.mode, "_explicit_config": bool(args.config)})
    register_secret(settings.alpaca.key_id)
    register_secret(settings.alpaca.secret_key)
    setup_logging(settings.log_level, settings.log_path, console=False)
    calendar = nyse()
    settings.data_path.mkdir(parents=True, exist_ok=True)
    market = MarketStore(settings.market_db_path, calendar)
    try:
        if args.action == "list":
            rows = summary(market, calendar)
            if args.json:
                print(json.dumps(rows, indent=2))
                return 0
            from app.term import notes, table

            table(["TICKER", "FIRST", "LAST", "BARS", "SESSIONS", "GAPS"],
                  [[r["ticker"], r["first"][:16].replace("T", " "),
                    r["last"][:16].replace("T", " "), f"{r['bars']:,}", str(r["sessions"]),
                    str(len(r["gaps"]))] for r in rows], status_col=None)
            if not rows:
                print("no bars stored yet ('autotrader data fetch TICKER --start ... --end ...')")
            gapped = [f"{r['ticker']}: {', '.join(r['gaps'][:5])}"
                      + (f" and {len(r['gaps']) - 5} more" if len(r["gaps"]) > 5 else "")
                      for r in rows if r["gaps"]]
            if gapped:
                notes("Sessions with no bar (UTC minutes above; gaps by exchange day)", gapped,
                      style="yellow")
            return 0
        if args.action in ("prune", "export"):
            from app.marketdata import retention

            if args.action == "prune":
                gone = retention.prune_before(market, args.before)
                print(f"{sum(gone.values()):,} bars before {args.before} deleted"
                      + (f" ({', '.join(f'{t} {n:,}' for t, n in gone.items())})" if gone
                         else ""))
                return 0
            n = retention.export_to(market, check_ticker(args.ticker.upper()),
                                    None if args.csv == "-" else Path(args.csv).expanduser(),
                                    args.start, args.end)
            if not n:
                print(f"autotrader data: no bars of {args.ticker.upper()} stored"
                      + (" in that range" if args.start or args.end else "")
                      + " (see 'autotrader data list')", file=sys.stderr)
            elif args.csv != "-":
                print(f"{n:,} bars of {args.ticker.upper()} written to {args.csv}")
            return 0 if n else 1
        return _fetch_cmd(args, settings, market, calendar)
    except (FetchError, BadTickerError) as e:
        print(f"autotrader data: {e}", file=sys.stderr)
        return 2
    finally:
        market.close()


def _fetch_cmd(args: argparse.Namespace, settings: Settings, market: MarketStore,
               calendar: MarketCalendar) -> int:
    from app.marketdata.backfill import Backfiller, BackfillError

    if settings.effective_mode == "demo":  # no keys: the demo's own synthetic market
        fetch = demo_fetch(settings, market, calendar)
    else:
        bf = Backfiller(settings, market, calendar)

        def fetch(tickers: list[str], lo: datetime, hi: datetime) -> dict[str, list[tuple]]:
            return bf.fetch_rows(tickers, lo, hi)

    splits = None
    if settings.effective_mode != "demo" and not args.raw:
        from app.broker.alpaca_clients import split_reader

        splits = split_reader(settings)
    csv_dir = Path(args.csv).expanduser() if args.csv else None
    line = ProgressLine()
    job = HistoryFetch(fetch, calendar, settings.data_path,
                       market=None if csv_dir else market, csv_dir=csv_dir,
                       feed=settings.alpaca.feed, sessions_per_chunk=args.sessions_per_request,
                       on_progress=line, splits=splits)
    tickers = [t for t in args.tickers.split(",") if t.strip()]
    try:
        p = job.run(tickers, args.start, args.end)
    except KeyboardInterrupt:
        line.close()
        print("\ninterrupted: what was fetched is kept; run the same command again to resume",
              file=sys.stderr)
        return 130
    except BackfillError as e:
        line.close()
        print(f"autotrader data: {e}\n(what was fetched is kept; run the same command again "
              "to resume)", file=sys.stderr)
        return 1
    where = f"{csv_dir}/<TICKER>.csv" if csv_dir else str(settings.market_db_path)
    print(f"{p.bars:,} bars of {', '.join(sorted({t.upper() for t in tickers}))} stored in "
          f"{where} ({p.skipped} of {p.sessions_total} sessions were already done)")
    if p.splits:
        print("split-adjusted (today's share basis) for: " + "; ".join(p.splits)
              + ("\n(backtest these CSVs with --adjusted)" if csv_dir else ""))
    if settings.effective_mode == "demo":
        print("(demo: the synthetic market's bars, up to the demo's clock)")
    return 0
