"""Notifications to the owner's phone through apprise (ntfy, Telegram, Pushover, e-mail, ...).

``Notifier.send`` never blocks its caller (an engine thread, the UI): it puts the message on a
bounded queue and returns. One worker thread takes them, merges what arrives within
``batch_seconds`` into one message (100 fills in a minute are one notification), spaces
messages at least ``min_interval`` seconds apart, retries a failed send a few times, and drops
(and logs) what overflows the queue. Target URLs carry tokens: they are registered as secrets
(scrubbed from the logs) and shown masked.
"""

from __future__ import annotations

import argparse
import logging
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from app.broker import retry

logger = logging.getLogger(__name__)

QUEUE_SIZE = 200
MAX_LINES = 25  # events listed in one merged message (targets cut long ones)


def mask_url(url: str) -> str:
    """``ntfys://user:pass@host/topic`` -> ``ntfys://****@host/****``: scheme and host only."""
    m = re.match(r"^([A-Za-z0-9+.-]+)://(?:[^@/]*@)?([^/?#]*)", url)
    if not m:
        return "****"
    creds = "****@" if "@" in url.split("://", 1)[1].split("/", 1)[0] else ""
    return f"{m.group(1)}://{creds}{m.group(2)}/****"


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    kind: str = "info"  # info | warning | failure
    attach: str | None = None  # a file (a chart) for the targets that take one


class NotDelivered(Exception):
    """apprise answered that a target did not take the message."""


class Notifier:
    def __init__(self, urls: list[str] | tuple[str, ...], *, batch_seconds: float = 5.0,
                 min_interval: float = 30.0, retries: int = 3, retry_wait: float = 5.0,
                 timeout: float = 15.0) -> None:
        import apprise

        from app.logging_setup import register_secret

        self.urls = [u for u in urls if u]
        for u in self.urls:
            register_secret(u)
        self._apprise = apprise.Apprise()
        for u in self.urls:
            if not self._apprise.add(u):
                logger.error("notification target %s is not a valid apprise URL", mask_url(u))
        self.batch_seconds, self.min_interval = batch_seconds, min_interval
        self.retries, self.retry_wait, self.timeout = retries, retry_wait, timeout
        # 3 tries 5 s apart then 10 s; no try starts after the budget (then the next batch).
        self.policy = retry.RetryPolicy(attempts=max(1, retries), base=retry_wait,
                                        cap=max(retry_wait, 4 * retry_wait),
                                        budget=max(60.0, 4 * retry_wait * retries))
        self._q: queue.Queue[Message | None] = queue.Queue(QUEUE_SIZE)
        self._last_sent = 0.0
        self.sent = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._work, name="notify", daemon=True)
        self._thread.start()

    @property
    def enabled(self) -> bool:
        return len(self._apprise) > 0

    def send(self, title: str, body: str, kind: str = "info", attach: str | None = None) -> bool:
        """Queue a message (``attach``: a file such as a chart, sent to the targets that take
        one); False if it was dropped (queue full, no target). Never blocks."""
        if not self.enabled:
            return False
        try:
            self._q.put_nowait(Message(title, body, kind, attach))
            return True
        except queue.Full:
            self.dropped += 1
            logger.warning("notification dropped (queue full): %s", title)
            return False

    def _work(self) -> None:
        while True:
            first = self._q.get()
            if first is None:
                return
            batch = [first]
            wait = max(self.batch_seconds, self._last_sent + self.min_interval - time.monotonic())
            deadline = time.monotonic() + wait
            stop = False
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    m = self._q.get(timeout=left)
                except queue.Empty:
                    break
                if m is None:
                    stop = True
                    break
                batch.append(m)
            self._deliver(batch)
            if stop:
                return

    def _deliver(self, batch: list[Message]) -> None:
        import apprise

        if len(batch) == 1:
            title, body = batch[0].title, batch[0].body
        else:
            title = f"AutoTrader: {len(batch)} events"
            # a summary or a failure first, fills after; a phone shows the first lines
            ranked = sorted(batch, key=lambda m: m.kind == "info" and not m.attach)
            lines = [f"- {m.title}: {m.body}" for m in ranked[:MAX_LINES]]
            if len(batch) > MAX_LINES:
                lines.append(f"... and {len(batch) - MAX_LINES} more (see the log)")
            body = "\n".join(lines)
        from app.logging_setup import scrub

        # keys, tokens and target URLs never leave in a message (an error text may quote one)
        title, body = scrub(title), scrub(body)
        kinds = {m.kind for m in batch}
        ntype = (apprise.NotifyType.FAILURE if "failure" in kinds else
                 apprise.NotifyType.WARNING if "warning" in kinds else apprise.NotifyType.INFO)
        attach = [m.attach for m in batch if m.attach] or None

        def once() -> None:
            # bool(): apprise 1.x returns a bool, 2.x a result that is truthy on success.
            # Targets that take no attachment get the text alone (apprise's own rule).
            if not bool(self._apprise.notify(title=title, body=body, notify_type=ntype,
                                             attach=attach)):
                raise NotDelivered("a target did not take the message (apprise said no)")

        try:
            # The broker boundary's policy (app/broker/retry.py): pauses of retry_wait, then
            # doubled (5 s, 10 s: the old linear 5, 10 for three tries), all tries within
            # the budget. Every failure counts as transient (a target plugin's bug too: it
            # must not kill the notifier thread).
            retry.call(once, self.policy, transient=lambda e: True, what="notification")
        except retry.Exhausted as e:
            logger.error("notification not delivered after %d tries (%s): %s", e.tries,
                         e.last, title)
            return
        self._last_sent = time.monotonic()
        self.sent += 1
        logger.info("notification sent: %s (%d events)", title, len(batch))

    def close(self, timeout: float = 10.0) -> bool:
        """Deliver what is queued and end the worker; True if it ended within ``timeout``."""
        try:
            self._q.put(None, timeout=1)
        except queue.Full:
            pass
        self._thread.join(timeout)
        return not self._thread.is_alive()


EVENTS = ("fills", "failures", "rejected", "stop_all", "crash", "daily_summary")
DEFAULT_EVENTS = frozenset(EVENTS) - {"fills"}
REJECTED_PREFIX = "the broker refused"


class EngineNotifications:
    """An engine listener turning what happens into messages: an algorithm failing, stopped by
    a guard or paused; an order refused; stop-all; fills (off by default); the stream down for
    more than ``stream_minutes`` (0: never). ``events``: the switched-on names of ``EVENTS``."""

    def __init__(self, engine: Any, notifier: Notifier, stream_minutes: float = 5.0,
                 events: frozenset[str] | set[str] = DEFAULT_EVENTS) -> None:
        self.engine, self.notifier = engine, notifier
        self.stream_minutes = stream_minutes
        self.events = frozenset(events)
        self._stop_all_reason: str | None = None
        self._stop_all_pending = False
        self._seen: dict[int, tuple[str, str | None]] = {}
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._down_told = False
        for v in engine.algorithm_views():
            self._seen[v.id] = (v.status, v.error)

    def on_algorithms_changed(self) -> None:
        try:
            views = self.engine.algorithm_views()
        except Exception:  # noqa: BLE001
            return
        with self._lock:
            for v in views:
                before = self._seen.get(v.id)
                now = (v.status, v.error)
                self._seen[v.id] = now
                if before == now or before is None:
                    continue
                if self._stop_all_pending and v.status == "stopped" and (
                        v.error is None or v.error == self._stop_all_reason):
                    continue  # said once by on_stop_all
                rejected = bool(v.error and v.error.startswith(REJECTED_PREFIX))
                if ("rejected" if rejected else "failures") not in self.events:
                    continue
                if v.status in ("error", "paused") or (v.status == "stopped" and v.error):
                    self.notifier.send(f"{v.name} ({v.ticker}) {v.status}",
                                       v.error or "no reason given", "failure")
                elif v.error and v.error != (before[1] if before else None):
                    self.notifier.send(f"{v.name} ({v.ticker})", v.error, "warning")
            self._stop_all_pending = False

    def on_stop_all(self, count: int, liquidate: bool, reason: str | None) -> None:
        with self._lock:
            self._stop_all_pending, self._stop_all_reason = True, reason
        if "stop_all" in self.events:
            self.notifier.send("Stop all" + (" and sell" if liquidate else ""),
                               f"{count} algorithms stopped" + (f" ({reason})" if reason else ""),
                               "warning")

    def on_fill(self, algo_id: int, tx: dict) -> None:
        if "fills" not in self.events:
            return
        try:
            name = self.engine.algorithm_view(algo_id).name
        except Exception:  # noqa: BLE001
            name = f"algorithm {algo_id}"
        self.notifier.send(f"Fill: {name}",
                           f"{str(tx.get('type', '')).upper()} {tx.get('shares')} "
                           f"{tx.get('ticker')} @ {float(tx.get('price') or 0):.2f}")

    def on_feed_status(self, status: Any) -> None:
        """The feed's status listener (``FeedStatus``): connected/simulated is up; stopped
        (the app closing) says nothing; the rest is down."""
        state = getattr(status, "state", str(status))
        if state == "stopped":
            return
        self.on_stream_status(state in ("connected", "simulated"),
                              f"{state}: {getattr(status, 'detail', '')}".rstrip(": "))

    def on_stream_status(self, up: bool, text: str = "") -> None:
        if self.stream_minutes <= 0:
            return
        now = time.monotonic()
        if up:
            if self._down_told:
                self.notifier.send("Market data stream back", text or "connected", "info")
            self._down_since, self._down_told = None, False
            return
        if self._down_since is None:
            self._down_since = now
        elif not self._down_told and now - self._down_since >= self.stream_minutes * 60:
            self._down_told = True
            self.notifier.send("Market data stream down",
                               f"for more than {self.stream_minutes:g} min: {text}", "failure")


def main(argv: list[str]) -> int:
    """``autotrader notify --test [--url URL]``: send a test message now, to URL or to the
    configured targets (``[notify] urls``), and wait for it."""
    from app.cliargs import add_common_options, settings_from_args

    p = argparse.ArgumentParser(prog="autotrader notify",
                                description="Send a test message to the configured targets "
                                            "([notify] urls) or to --url.")
    add_common_options(p)
    p.add_argument("--mode", choices=["auto", "demo", "paper", "live"])
    p.add_argument("--test", action="store_true", required=True)
    p.add_argument("--url", action="append",
                   help="an apprise URL (repeat for several; default: the config's)")
    args = p.parse_args(argv[1:] if argv and argv[0] == "notify" else argv)
    urls = args.url or list(settings_from_args(args).notify.urls)
    if not urls:
        print("no notification target: set [notify] urls in the config, or give --url URL",
              file=sys.stderr)
        return 2
    n = Notifier(urls, batch_seconds=0, min_interval=0, retries=1)
    if not n.enabled:
        print("no valid notification URL (apprise did not recognise "
              f"{', '.join(mask_url(u) for u in urls)})", file=sys.stderr)
        return 2
    n.send("AutoTrader test", "If you read this, notifications work.")
    n.close(timeout=30)
    shown = ", ".join(mask_url(u) for u in n.urls)
    if n.sent:
        print(f"test message sent to {shown}")
        return 0
    print(f"the test message could not be delivered to {shown} (see the log)", file=sys.stderr)
    return 1
