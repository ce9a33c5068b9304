"""Broker-update intake and the position watch: what the broker says comes back as events.

Order updates (from the broker's stream or poller thread, any thread) are recorded in one
short step under the core's lock. The position watch compares each ticker's position at the
broker with the sum of the algorithms' (plus the shares held outside AutoTrader, recorded as
"external" at the first start and never traded); a difference pauses the algorithms on that
ticker until the user accepts the broker's figure or resumes them.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime
from typing import Any

from app.broker.base import TERMINAL_STATUSES, BrokerError, OrderUpdate
from app.engine.core import EngineCore
from app.engine.model import EXTERNAL_KEY, GUARDS_KEY, AlgoState, EngineError
from db.system import Transaction
from db.timeutil import iso_z, parse_iso

logger = logging.getLogger(__name__)

# A tick whose newest bar is this many session minutes old says so on the card; from
# STALE_HOLD_MINUTES on its algorithms hold (see _feed_hold and README "Halts and gaps").
STALE_BAR_MINUTES = 2
STALE_HOLD_MINUTES = 5


class BrokerIntake(EngineCore):

    # --- order updates -------------------------------------------------------------------
    def _apply_txs(self, txs: list[Transaction]) -> list[Transaction]:
        """Under the lock: bring the in-memory ledgers up to date with new transactions."""
        out = []
        for tx in txs:
            if not tx:
                continue
            a = self._algos.get(tx["algo_id"])
            if a is not None and tx["id"] > a.ledger.last_tx_id:
                a.ledger.apply(tx)
                if a.rejections:  # a fill ends a run of refusals
                    a.rejections = 0
                    self._persist_holds()
                self._snapshot_later(a.id)
            out.append(tx)
            if self._collect is not None:
                self._collect.append(tx)
            self._emit("on_fill", tx["algo_id"], tx)
        return out

    def _on_order_update(self, update: OrderUpdate) -> None:
        """Broker listener (any thread). The lock is only ever held for short steps.

        An account may be shared by installs (a Pi and a desktop): an update whose client
        order id lacks this install's prefix (and the pre-prefix ``at-``) is another
        install's order and is ignored here, before any lock or DB read."""
        if self._closed:
            return
        cid = str(getattr(update, "client_order_id", "") or "")
        prefix = getattr(getattr(self, "orders", None), "prefix", "at")
        if not (cid.startswith(f"{prefix}-") or cid.startswith("at-")):
            logger.debug("update for another install's order ignored: %s", cid)
            return
        self._record_update(update)

    def _record_update(self, update: OrderUpdate) -> None:
        try:
            with self._lock:
                self._apply_txs(self.orders.apply_update(update))
        except Exception:
            logger.exception("cannot record update for %s", update.client_order_id)

    # --- holds that survive a restart ------------------------------------------------------
    def _persist_holds(self) -> None:
        """Under the lock: write what holds algorithms back (refusals in a row, cool-downs,
        pauses, accepted differences) with the day's guard baselines, at once: a restart
        (or a kill -9) must not lift a pause or reset a refusal count."""
        holds: dict[int, dict[str, Any]] = {}
        for a in self._algos.values():
            if a.status != "running":
                continue
            h: dict[str, Any] = {}
            if a.rejections:
                h["rejections"] = a.rejections
            if a.cooldown_until is not None:
                h["cooldown_until"] = iso_z(a.cooldown_until)
            if a.paused:
                h["paused"] = a.paused
            if h:
                holds[a.id] = h
        self.guards.holds = holds
        self.guards.acked = dict(self._acked)
        try:
            self.system.set_setting(GUARDS_KEY, self.guards.dump())
        except (sqlite3.Error, OSError) as e:
            # Never worth breaking the step that called it (a fill being recorded): the
            # holds stay in memory and go out with the next tick's intents (same key).
            logger.warning("cannot write the algorithms' holds now (%s); they are kept in "
                           "memory and written with the next tick", e)

    def _restore_holds(self) -> None:
        """At construction: put the persisted holds back on the running algorithms."""
        self._acked = dict(self.guards.acked)
        for algo_id, h in self.guards.holds.items():
            a = self._algos.get(algo_id)
            if a is None or a.status != "running":
                continue
            a.rejections = int(h.get("rejections", 0))
            until = h.get("cooldown_until")
            a.cooldown_until = parse_iso(until) if until else None
            if h.get("paused"):
                a.paused = a.error = str(h["paused"])

    # --- the market-data feed's view of a ticker ------------------------------------------
    def _feed_hold(self, ticker: str, minute: datetime,
                   seen: dict[str, str | None]) -> str | None:
        """Under the lock, while planning: the card's note for ``ticker`` this minute, or None.
        A note starting "holding" means its algorithms hold (plugins not run, no order):
        the stream refused the symbol, a trading halt or LULD pause, no bar at all, or no bar
        for ``STALE_HOLD_MINUTES`` session minutes (a market order would fill far from the
        last price the plugin saw). ``STALE_BAR_MINUTES`` to that: "no bar for N min" on the
        card, and it trades (one or two empty IEX minutes are normal for a thin ticker).
        Asked of a live feed only (one with ``ticker_status``). ``seen`` caches per tick."""
        if ticker in seen:
            return seen[ticker]
        why = None
        status_of = getattr(self.feed, "ticker_status", None)
        if status_of is not None:
            st = status_of(ticker)
            if st.state == "refused":
                why = f"holding: the market data stream refused {ticker}" + (
                    f" ({st.detail})" if st.detail else "")
            elif st.halted:
                why = f"holding: {ticker} halted ({st.halt_reason or 'trading halt'})"
            else:
                # A delayed feed (delayed_sip: 15 min) is measured from its newest final
                # minute (AlpacaStream.watermark), not taken for a gap.
                delay = int(getattr(self.feed, "delay_seconds", 0) or 0)
                age = self._bar_age(ticker, datetime.fromtimestamp(
                    int(minute.timestamp()) - delay, UTC) if delay else minute)
                if age is None:
                    why = f"holding: no bar for {ticker} yet"
                elif age >= STALE_HOLD_MINUTES:
                    why = f"holding: no bar for {age} min"
                elif age >= STALE_BAR_MINUTES:
                    why = f"no bar for {age} min"
        seen[ticker] = why
        return why

    def _bar_age(self, ticker: str, minute: datetime) -> int | None:
        """Session minutes from the newest stored bar before ``minute`` to ``minute`` (1 when
        the bar of the minute before is there; the night between sessions does not count)."""
        ts = int(minute.timestamp())
        rows = self.market.last_n_rows(ticker, 1, ts)
        if not rows:
            return None
        newest = int(rows[0][0])
        if ts - newest < 60 * STALE_BAR_MINUTES:
            return max(1, (ts - newest) // 60)
        gap = self.calendar.minutes_between(datetime.fromtimestamp(newest + 60, UTC), minute)
        return len(gap) + 1

    def _halted_reason(self, ticker: str) -> str | None:
        """Right before an order leaves: ``not sent: NVDA halted (...)`` during a halt."""
        halted = getattr(self.feed, "is_halted", None)
        if halted is None or not halted(ticker):
            return None
        status_of = getattr(self.feed, "ticker_status", None)
        reason = status_of(ticker).halt_reason if status_of is not None else ""
        return f"not sent: {ticker} halted ({reason or 'trading halt'})"

    # --- positions -----------------------------------------------------------------------
    def _save_external(self) -> None:
        self.system.set_setting(EXTERNAL_KEY, json.dumps(self._external or {}))

    def _record_external(self, broker_pos: dict[str, float]) -> None:
        """Under the lock, first start only: what the broker holds beyond the algorithms."""
        mine = self.system.positions_by_ticker()
        self._external = {t: q - mine.get(t, 0) for t, q in broker_pos.items()
                          if abs(q - mine.get(t, 0)) > 1e-9}
        self._save_external()
        if self._external:
            logger.warning("shares held outside AutoTrader (never traded): %s", ", ".join(
                f"{q:g} {t}" for t, q in sorted(self._external.items())))

    def _differences(self, broker_pos: dict[str, float], traded_after: int | None = None,
                     ) -> dict[str, tuple[float, float, float]]:
        """Under the lock: ticker -> (broker, algorithms, external) where they disagree.
        Tickers with orders still open are skipped: their positions are moving; so are those
        with a fill recorded after transaction ``traded_after`` (the broker's figures were
        read before it: an order that filled between the read and now is in our ledger and
        not in them, and the next check compares them again)."""
        mine = self.system.positions_by_ticker()
        ext = self._external or {}
        moving = {r["ticker"] for r in self.system.open_orders()
                  if r["status"] not in TERMINAL_STATUSES}
        if traded_after is not None:
            moving |= self.system.tickers_traded_after(traded_after)
        out = {}
        for t in sorted(set(broker_pos) | set(mine) | set(ext)):
            if t in moving:
                continue
            b, m, x = float(broker_pos.get(t, 0.0)), float(mine.get(t, 0)), float(ext.get(t, 0))
            d = b - m - x
            if abs(d) > 1e-9 and abs(d - self._acked.get(t, 0.0)) > 1e-9:
                out[t] = (b, m, x)
        return out

    def _compare_positions(self, broker_pos: dict[str, float],
                           traded_after: int | None = None) -> list[AlgoState]:
        """Under the lock: pause the algorithms of every ticker that differs (see
        ``_differences`` for ``traded_after``)."""
        self._broker_positions = dict(broker_pos)
        paused = []
        for t, (b, m, x) in self._differences(broker_pos, traded_after).items():
            why = f"broker holds {b:g} {t}, the algorithms {m:g}" + (
                f" (and {x:g} external)" if x else "")
            for a in self._algos.values():
                if a.ticker == t and a.status == "running" and a.paused != why:
                    a.paused = a.error = why
                    self.system.set_algorithm_error(a.id, why)
                    paused.append(a)
                    self._snapshot_later(a.id)
            logger.error("positions differ: %s; its algorithms are paused", why)
        if paused:
            self._persist_holds()
        return paused

    def watch_positions(self, minute: datetime | None = None) -> list[int]:
        """Ask the broker for its positions (no lock held) and pause what differs; returns
        the ids of algorithms newly paused. Called every 5 minutes by the tick."""
        before = self.system.last_transaction_id()
        try:
            pos = self.broker.get_positions()
        except BrokerError as e:
            logger.warning("cannot read the broker's positions: %s", e)
            return []
        with self._lock:
            self._last_watch = minute
            paused = self._compare_positions(pos, traded_after=before)
        if paused:
            self._emit("on_algorithms_changed")
        return [a.id for a in paused]

    def _acknowledge_difference(self, ticker: str) -> None:
        """Under the lock: the user resumed; this very difference no longer pauses."""
        mine = self.system.positions_by_ticker()
        ext = self._external or {}
        self._acked[ticker] = (float(self._broker_positions.get(ticker, 0.0))
                               - float(mine.get(ticker, 0)) - float(ext.get(ticker, 0)))

    def accept_broker_position(self, ticker: str) -> float:
        """The user accepts the broker's figure for ``ticker``: the difference becomes
        "external" shares (never traded) and the ticker's algorithms run again. Returns the
        external share count now recorded."""
        pos = self.io.ask("read the positions", self.broker.get_positions)
        with self._lock:
            mine = self.system.positions_by_ticker()
            ext = dict(self._external or {})
            ext[ticker] = float(pos.get(ticker, 0.0)) - float(mine.get(ticker, 0))
            if abs(ext[ticker]) < 1e-9:
                ext.pop(ticker)
            self._external = ext
            self._acked.pop(ticker, None)
            self._save_external()
            self._broker_positions = dict(pos)
            found = False
            for a in self._algos.values():
                if a.ticker == ticker and a.paused:
                    a.paused = a.error = None
                    self.system.set_algorithm_error(a.id, None)
                    found = True
                    self._snapshot_later(a.id)
            self._persist_holds()
        if not found and ticker not in pos and ticker not in ext:
            raise EngineError(f"nothing to accept for {ticker}")
        logger.warning("accepted the broker's position for %s: %g external shares", ticker,
                       ext.get(ticker, 0.0))
        self._emit("on_algorithms_changed")
        return ext.get(ticker, 0.0)

    @property
    def external_positions(self) -> dict[str, float]:
        with self._lock:
            return dict(self._external or {})
