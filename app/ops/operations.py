"""What the running app does for an owner who is not in front of it, started next to the
control channel (window and headless) by ``start_operations``:

- notifications (``[notify]``): the engine's events, the stream's status, a start after a
  crash (the ``running`` marker left by a process that did not close), the daily summary;
- the daily performance snapshot after each session's last tick (and at start-up for a
  session that ran but has no snapshot: the app was off at its close);
- ``[market] keep_days`` retention, at most once a day;
- the read-only status page (``[status]``).

Everything here is an engine listener or its own daemon thread; none of it holds the engine
up, and a failure is logged, never raised into the engine.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from db import performance as perf
from db.timeutil import iso_z, utcnow

logger = logging.getLogger(__name__)

MARKER = "running"
STREAM_CHECK_SECONDS = 30.0
CLOSE_WAIT_SECONDS = 20.0  # for the last close's snapshot and summary at shutdown
MINUTE = timedelta(minutes=1)


def crash_marker(data_path: Path) -> str | None:
    """Create ``<data>/running`` (removed at a clean close); return what the previous one said
    when it was still there (the last run did not close cleanly), else None."""
    path = Path(data_path) / MARKER
    before = None
    try:
        if path.exists():
            before = path.read_text(encoding="utf-8").strip() or "unknown"
        path.write_text(f"pid {os.getpid()} since {iso_z(utcnow())}\n", encoding="utf-8")
    except OSError as e:
        logger.warning("cannot write the running marker %s: %s", path, e)
    return before


def clear_marker(data_path: Path) -> None:
    try:
        (Path(data_path) / MARKER).unlink()
    except OSError:
        pass


class Operations:
    """The engine listener: session close, catch-up, retention, summary; holds the parts."""

    def __init__(self, engine: Any, settings: Any, notifier: Any = None,
                 notes: Any = None) -> None:
        self.engine, self.settings = engine, settings
        self.notifier, self.notes = notifier, notes
        self.status_server: Any = None
        self._started = False
        self._snapshotted: set[str] = set()
        self._said_no_charts = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # the last minute run before this start, read before the engine ticks (missed_day)
        self._last_at_start = getattr(engine, "last_minute", None)

    # --- engine listener ---------------------------------------------------------------
    def on_algorithms_changed(self) -> None:
        if self._started:
            return
        self._started = True  # the engine's start() ends with this: catch up, prune
        self._spawn(self._at_start, "ops-start")

    def on_tick(self, result: Any) -> None:
        minute = result.minute
        cal = self.engine.calendar
        if cal.is_open(minute + MINUTE):
            return
        s = cal.previous_session(minute + MINUTE)  # this tick was the session's last
        self.session_closed(s.day)

    def session_closed(self, day: Any) -> None:
        key = day.isoformat()
        with self._lock:
            if key in self._snapshotted:
                return
            self._snapshotted.add(key)
        self._spawn(lambda: self._after_close(day), "ops-close")

    # --- work (own threads) ------------------------------------------------------------
    def _spawn(self, fn: Any, name: str) -> None:
        def run() -> None:
            try:
                fn()
            except Exception:  # noqa: BLE001 - never into the engine
                logger.exception("%s failed", name)
            finally:  # this thread ends here: its DB connections with it (not at the next open)
                for store in ("system", "market"):
                    release = getattr(getattr(self.engine, store, None), "release_thread", None)
                    if release is not None:
                        release()

        t = threading.Thread(target=run, name=name, daemon=True)
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _at_start(self) -> None:
        from app.ops.performance import missed_day, take_snapshot

        day = missed_day(self.engine, self._last_at_start)
        if day is not None:
            with self._lock:
                self._snapshotted.add(day.isoformat())
            take_snapshot(self.engine, day, taken="startup")
        self._retention()

    def _after_close(self, day: Any) -> None:
        from app.ops.performance import day_summary, take_snapshot

        previous = {}
        for r in perf.all_since(self.engine.system.conn, ""):
            if r["day"] < day.isoformat():
                previous[r["algo_id"]] = r  # ordered by day: the newest before wins
        rows = take_snapshot(self.engine, day, taken="close")
        n = self.settings.notify
        if self.notifier is not None and n.daily_summary:
            title = f"AutoTrader {self.engine.mode}: day {day.isoformat()}"
            self.notifier.send(title, day_summary(rows, previous), "info",
                               attach=self._summary_chart(day, rows, previous, title))
        self._retention()

    def _summary_chart(self, day: Any, rows: list[dict[str, Any]],
                       previous: dict[int, dict[str, Any]], title: str) -> str | None:
        """``<data>/charts/day-YYYY-MM-DD.png`` (the last 10 kept); None if it cannot be drawn
        (the text goes alone)."""
        from app.ops.charts import charts_unavailable, day_png

        missing = charts_unavailable()
        if missing:  # a kiosk without the charts extra: the text goes alone, said once
            if not self._said_no_charts:
                self._said_no_charts = True
                logger.warning("daily summary without its picture: %s", missing)
            return None
        folder = Path(self.settings.data_path) / "charts"
        try:
            day_pnl = {f"#{r['algo_id']} {r['name']}": r["pnl"] - (previous[r["algo_id"]]["pnl"]
                                              if r["algo_id"] in previous else 0.0)
                       for r in rows if r["algo_id"] != perf.ACCOUNT}
            account = [(r["day"], r["value"])
                       for r in perf.history(self.engine.system.conn, perf.ACCOUNT, limit=30)]
            path = day_png(folder / f"day-{day.isoformat()}.png", title, day_pnl, account)
            for old in sorted(folder.glob("day-*.png"))[:-10]:
                old.unlink(missing_ok=True)
            return str(path)
        except Exception:  # noqa: BLE001 - the summary's text still goes
            logger.exception("daily summary chart not drawn")
            return None

    def _retention(self) -> None:
        from app.marketdata.retention import apply_keep_days
        from db.calendar import exchange_time

        keep = self.settings.market.keep_days
        if keep > 0:
            today = exchange_time(self.engine.clock.now()).date()
            apply_keep_days(self.engine.market, self.engine.system, keep, today)

    def watch_stream(self) -> None:
        """Re-check the stream every 30 s: "down for N minutes" needs no new status event."""
        feed = getattr(self.engine, "feed", None)
        if feed is None or self.notes is None:
            return

        def loop() -> None:
            while not self._stop.wait(STREAM_CHECK_SECONDS):
                try:
                    self.notes.on_feed_status(feed.status)
                except Exception:  # noqa: BLE001
                    logger.exception("stream check failed")

        t = threading.Thread(target=loop, name="ops-stream", daemon=True)
        t.start()

    def close(self) -> None:
        self._stop.set()
        deadline = time.monotonic() + CLOSE_WAIT_SECONDS
        for t in list(self._threads):  # a close's snapshot and summary still being written
            t.join(max(0.0, deadline - time.monotonic()))
        if self.status_server is not None:
            self.status_server.close()
        if self.notifier is not None:
            self.notifier.close(timeout=10)
        clear_marker(self.settings.data_path)


def start_operations(engine: Any, settings: Any) -> Operations:
    """Start notifications, snapshots, retention and the status page for a built engine;
    everything closes with the engine. Never raises: a part that cannot start is logged."""
    notifier = notes = None
    n = settings.notify
    previous = crash_marker(settings.data_path)
    if previous is not None:
        logger.warning("the last run did not close cleanly (%s)", previous)
    if n.urls:
        try:
            from app.ops.notify import EVENTS, EngineNotifications, Notifier

            notifier = Notifier(list(n.urls))
            events = {e for e in EVENTS if getattr(n, e)}
            notes = EngineNotifications(engine, notifier, n.stream_down_minutes, events)
            engine.add_listener(notes)
            feed = getattr(engine, "feed", None)
            if feed is not None and hasattr(feed, "add_status_listener"):
                feed.add_status_listener(notes.on_feed_status)
            logger.info("notifications to %d targets", len(n.urls))
            if previous is not None and n.crash:
                notifier.send("AutoTrader started after a crash",
                              f"the last run ({previous}) did not shut down cleanly; it is "
                              f"running again in {engine.mode} mode", "warning")
        except Exception:  # noqa: BLE001 - the app trades without notifications
            logger.exception("notifications not started")
    ops = Operations(engine, settings, notifier, notes)
    engine.add_listener(ops)
    ops.watch_stream()
    if settings.status.enabled:
        try:
            from app.ops.status_page import StatusServer

            ops.status_server = StatusServer(engine, settings).start()
        except Exception as e:  # noqa: BLE001
            logger.error("status page not started: %s", e)
    engine.call_on_close(ops.close)
    return ops


def with_operations(start_control: Any, settings: Any) -> Any:
    """For ``run_headless(start_control=...)``: the control channel, then ``start_operations``
    (the engine does not import the layers above it; the entry point hands both down)."""

    def start(engine: Any, data_path: Path) -> Any:
        server = start_control(engine, data_path) if start_control is not None else None
        start_operations(engine, settings)
        return server

    return start
