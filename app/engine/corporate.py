"""Corporate actions: splits, cash dividends and the actions that pause (mergers, symbol
changes, delistings...).

Once a day (the first tick of each exchange date) and at start-up the engine asks the broker
for the actions announced for every ticker in use (Alpaca: the corporate-actions API through
alpaca-py's ``CorporateActionsClient``; demo: the simulated broker's schedule), stores them,
and applies the ones whose ex-date has come, before that day's first tick:

- **split** (forward or reverse, ``new_rate`` for ``old_rate``): the stored bars before the
  ex-date are scaled (prices x old/new, volume x new/old; one market-DB transaction, recorded
  in ``applied_splits`` so it happens once and later backfills of old minutes are scaled as
  they come in). Then, in one system-DB transaction, each algorithm holding shares at the
  ex-date gets a ``split`` event (whole shares = floor(held x new/old), average cost x old/new)
  and, for a fraction, a ``cash_in_lieu`` event of its own (the fraction sold at the last close
  before the ex-date, adjusted); shares held outside AutoTrader ("external") are scaled too;
  the action is marked applied in the same transaction. A restart, or a kill -9 mid-apply,
  never applies it twice (each step is one transaction, checked before it runs).
- **cash dividend**: each algorithm holding shares when the ex-date opens (the holders on
  the record date, T+1) gets a ``dividend`` event: cash and realised income.
- **anything else** (mergers, name changes, delistings, spin-offs, unit splits, stock
  dividends, redemptions, rights): the algorithms on that ticker are paused with the reason
  (an ``action`` event records it); the user checks the broker, then resumes or stops them.

Events are in ``algo_events`` (db/corporate.py), never in the buy/sell ``transactions`` table
plugins read; ``Engine.history(algo_id)`` merges both for the UI.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import db.corporate as dbc
from app.engine.core import EngineCore
from app.engine.ledger import Ledger
from app.engine.model import EXTERNAL_KEY
from db.calendar import EXCHANGE_TZ
from db.corporate import SPLIT_KINDS, ex_epoch
from db.timeutil import iso_z

logger = logging.getLogger(__name__)

LOOK_BACK_DAYS = 30  # actions this old are still applied if missed (the app was off)
LOOK_AHEAD_DAYS = 60
ALL_ALGO_STATUSES = ("running", "stopped", "error", "deleted")


def describe(action: dict[str, Any]) -> str:
    kind = action["kind"]
    if kind in SPLIT_KINDS:
        return (f"{action['ticker']} {_rate(action['new_rate'])}-for-{_rate(action['old_rate'])}"
                f" {'reverse ' if kind == 'reverse_split' else ''}split on {action['ex_date']}")
    if kind == "cash_dividend":
        return f"{action['ticker']} cash dividend ${action['rate']:g}/share, ex {action['ex_date']}"
    extra = ", ".join(f"{k} {v}" for k, v in sorted((action.get("detail") or {}).items())
                      if k in ("new_symbol", "acquirer_symbol", "new_cusip") and v)
    return (f"{action['ticker']} {kind.replace('_', ' ')} on {action['ex_date']}"
            + (f" ({extra})" if extra else ""))


def _rate(x: float) -> str:
    return f"{x:g}"


class CorporateDesk(EngineCore):
    """Engine mixin (shares the core's lock and stores, see facade.py)."""

    _ca_day: str | None = None
    _ca_source: Any = None

    # --- where actions come from --------------------------------------------------------
    def _corporate_source(self) -> Any:
        """The broker if it reads corporate actions (Alpaca), else the simulated schedule."""
        if self._ca_source is None:
            if hasattr(self.broker, "get_corporate_actions"):
                self._ca_source = self.broker
            else:
                from app.broker.sim_corporate import SimCorporateActions

                self._ca_source = SimCorporateActions(self.system, self.market)
        return self._ca_source

    def _tickers_in_use(self) -> list[str]:
        with self._lock:
            held = {a.ticker for a in self._algos.values()
                    if a.status == "running" or a.ledger.position}
        held |= set(self.system.positions_by_ticker())
        return sorted(held)

    # --- the daily check ----------------------------------------------------------------
    def _corporate_before_tick(self, minute: datetime) -> None:
        """Before a tick (no lock held): the first tick of an exchange date reads and
        applies the day's corporate actions."""
        day = minute.astimezone(EXCHANGE_TZ).date()
        if self._ca_day == day.isoformat():
            return
        try:
            self.check_corporate_actions(day)
        except Exception:
            logger.exception("corporate actions: check failed; the tick goes on")

    def _corporate_at_start(self) -> None:
        self._restore_corporate_pauses()
        try:
            self.check_corporate_actions(self.clock.now().astimezone(EXCHANGE_TZ).date())
        except Exception:
            logger.exception("corporate actions: check at start failed")

    def check_corporate_actions(self, day: date) -> list[str]:
        """Read the announced actions for the tickers in use (broker I/O, no lock), store
        them, apply the due ones. Returns a line per action applied now."""
        tickers = self._tickers_in_use()
        source = self._corporate_source()
        if tickers:
            try:
                found = source.get_corporate_actions(
                    tickers, day - timedelta(days=LOOK_BACK_DAYS),
                    day + timedelta(days=LOOK_AHEAD_DAYS))
                new = dbc.save_actions(self.system, found)
                if new:
                    logger.info("corporate actions: %d new announcements for %s", new,
                                ", ".join(tickers))
            except Exception as e:  # the stored announcements still apply
                logger.warning("corporate actions: cannot read announcements: %s", e)
        self._ca_day = day.isoformat()
        return self.apply_corporate_actions(day)

    def apply_corporate_actions(self, day: date) -> list[str]:
        done = []
        for act in dbc.due_actions(self.system, day.isoformat()):
            settle = getattr(self._corporate_source(), "settle", None)
            if settle is not None:  # the simulated broker splits its own positions first
                try:
                    settle(act)
                except Exception:
                    logger.exception("simulated broker: cannot settle %s", act["id"])
            try:
                if act["kind"] in SPLIT_KINDS:
                    self._apply_split(act)
                elif act["kind"] == "cash_dividend":
                    self._apply_dividend(act)
                else:
                    self._apply_other(act)
            except Exception:
                logger.exception("corporate action %s (%s) not applied; retried at the next "
                                 "check", act["id"], describe(act))
                continue
            done.append(describe(act))
            logger.warning("corporate action applied: %s", describe(act))
        if done:
            self._emit("on_algorithms_changed")
        return done

    # --- helpers ------------------------------------------------------------------------
    def _holders(self, ticker: str, ex_iso: str) -> list[tuple[dict[str, Any], int, int]]:
        """(algorithm row, shares held before the ex-date, transactions on/after it)."""
        out = []
        for row in self.system.list_algorithms(ALL_ALGO_STATUSES):
            if row["ticker"] != ticker:
                continue
            held, later = dbc.position_at(self.system, row["id"], ex_iso)
            out.append((row, held, later))
        return out

    def _db_ledger(self, row: dict[str, Any]) -> Ledger:
        return Ledger.from_transactions(row["initial_capital"],
                                        self.system.transactions(row["id"]),
                                        dbc.events(self.system, row["id"]))

    def _take_events(self, action_id: str) -> None:
        """Under the lock, after the commit: the new events into the in-memory ledgers."""
        for ev in dbc.events(self.system):
            if ev["action_id"] != action_id:
                continue
            a = self._algos.get(ev["algo_id"])
            if a is not None and ev["id"] > a.ledger.last_event_id:
                a.ledger.apply_event(ev)
            if ev["type"] == "action" and a is not None and a.status == "running":
                a.paused = a.error = ev["note"]
                self.system.set_algorithm_error(a.id, ev["note"])

    def _pause_note(self, act: dict[str, Any], why: str) -> str:
        return f"paused: {describe(act)}: {why}"

    # --- split --------------------------------------------------------------------------
    def _apply_split(self, act: dict[str, Any]) -> None:
        ticker, old, new = act["ticker"], float(act["old_rate"]), float(act["new_rate"])
        if not (old > 0 and new > 0):
            raise ValueError(f"bad split rates {new}:{old}")
        ratio, factor = new / old, old / new
        ex_ts = ex_epoch(act["ex_date"])
        ex_iso = iso_z(ex_ts)
        # The fraction's price: the last close before the ex-date, on the post-split basis.
        last = self.market.latest_price(ticker, before_ts=ex_ts)
        if last is not None and not dbc.split_applied_to_bars(self.market, act["id"]):
            last *= factor
        changed = dbc.adjust_bars(self.market, act["id"], ticker, ex_ts, factor)
        if changed >= 0:
            logger.info("split %s: %d stored bars of %s before %s scaled by %g", act["id"],
                        changed, ticker, act["ex_date"], factor)
        with self._lock:
            with self.system.atomic():
                if dbc.is_applied(self.system, act["id"]):
                    return
                after = dbc.max_transaction_id(self.system)
                total_exact, total_whole = 0.0, 0
                for row, held, later in self._holders(ticker, ex_iso):
                    if held <= 0:
                        continue
                    if later:
                        # It traded on the ex-date before the split was known: its shares
                        # cannot be told apart; the user checks them against the broker.
                        dbc.add_event(self.system, algo_id=row["id"], action_id=act["id"],
                                      ticker=ticker, type="action", after_tx_id=after,
                                      timestamp=ex_iso, note=self._pause_note(
                                          act, "it traded after the ex-date before the split "
                                          "was known; check its position at the broker"))
                        continue
                    led = self._db_ledger(row)
                    exact = held * ratio
                    whole = int(math.floor(exact + 1e-9))
                    frac = max(0.0, exact - whole)
                    avg = led.avg_cost * factor if led.avg_cost is not None else None
                    total_exact += exact
                    total_whole += whole
                    dbc.add_event(
                        self.system, algo_id=row["id"], action_id=act["id"], ticker=ticker,
                        type="split", shares=whole - held, avg_cost=avg, old_rate=old,
                        new_rate=new, shares_before=held, shares_after=whole, price=last,
                        after_tx_id=after, timestamp=ex_iso,
                        note=f"split {_rate(new)}-for-{_rate(old)}: {held} -> {whole} shares")
                    if frac > 1e-9 and last is not None:
                        cash = round(frac * last, 2)
                        dbc.add_event(
                            self.system, algo_id=row["id"], action_id=act["id"], ticker=ticker,
                            type="cash_in_lieu", fraction=frac, cash=cash, price=last,
                            avg_cost=avg, old_rate=old, new_rate=new, after_tx_id=after,
                            timestamp=ex_iso,
                            note=f"cash in lieu of {frac:.4g} share at ${last:,.4f}")
                ext = dict(self._external or {})
                if ticker in ext or total_exact - total_whole >= 1.0 - 1e-9:
                    # The broker rounds the account's whole position once: what the
                    # algorithms' own roundings leave over is held outside them.
                    total = total_exact + ext.get(ticker, 0.0) * ratio
                    ext[ticker] = float(math.floor(total + 1e-9) - total_whole)
                    if abs(ext[ticker]) < 1e-9:
                        ext.pop(ticker)
                    self.system.set_setting(EXTERNAL_KEY, json.dumps(ext))
                dbc.mark_applied(self.system, act["id"])
            if self._external is not None or ext:
                self._external = ext
            self._take_events(act["id"])
            self._after_position_change(ticker)

    def _after_position_change(self, ticker: str) -> None:
        """Under the lock: a position-watch pause on ``ticker`` seen before the split was
        applied is lifted; the watch runs again at the next tick and pauses what still
        differs."""
        for a in self._algos.values():
            if a.ticker == ticker and a.paused and a.paused.startswith("broker holds"):
                a.paused = a.error = None
                self.system.set_algorithm_error(a.id, None)
        self._acked.pop(ticker, None)
        self._last_watch = None

    # --- dividends ----------------------------------------------------------------------
    def _apply_dividend(self, act: dict[str, Any]) -> None:
        rate = float(act["rate"] or 0.0)
        paid = f" (paid {act['payable_date']})" if act.get("payable_date") else ""

        def event(row: dict[str, Any], held: int) -> dict[str, Any] | None:
            if held <= 0 or rate <= 0:
                return None
            return {"type": "dividend", "cash": round(held * rate, 2), "price": rate,
                    "note": f"cash dividend ${rate:g} x {held} shares{paid}"}

        self._apply_once(act, event)

    # --- everything else pauses ---------------------------------------------------------
    def _apply_other(self, act: dict[str, Any]) -> None:
        note = self._pause_note(act, "check the position at the broker, then resume or stop "
                                     "the algorithm")

        def event(row: dict[str, Any], held: int) -> dict[str, Any] | None:
            if row["status"] != "running" and held <= 0:
                return None
            return {"type": "action", "note": note}

        self._apply_once(act, event)

    def _apply_once(self, act: dict[str, Any],
                    event: Callable[[dict[str, Any], int], dict[str, Any] | None]) -> None:
        """Record ``act`` once: for each algorithm that held ``act``'s ticker before the
        ex-date, the event ``event(row, held)`` gives (None: nothing for that one)."""
        ticker = act["ticker"]
        ex_iso = iso_z(ex_epoch(act["ex_date"]))
        with self._lock:
            with self.system.atomic():
                if dbc.is_applied(self.system, act["id"]):
                    return
                after = dbc.max_transaction_id(self.system)
                for row, held, _later in self._holders(ticker, ex_iso):
                    ev = event(row, held)
                    if ev is not None:
                        dbc.add_event(self.system, algo_id=row["id"], action_id=act["id"],
                                      ticker=ticker, after_tx_id=after, shares_before=held,
                                      shares_after=held, timestamp=ex_iso, **ev)
                dbc.mark_applied(self.system, act["id"])
            self._take_events(act["id"])

    def _restore_corporate_pauses(self) -> None:
        """At start: an algorithm paused by a corporate action stays paused until the user
        resumes it (resume clears the card's note, which is how the pause is remembered)."""
        with self._lock:
            for ev in dbc.events(self.system):
                a = self._algos.get(ev["algo_id"])
                if (ev["type"] == "action" and a is not None and a.status == "running"
                        and a.error == ev["note"]):
                    a.paused = ev["note"]

    # --- read model ---------------------------------------------------------------------
    def history(self, algo_id: int) -> list[dict[str, Any]]:
        """The algorithm's history for its card and chart, oldest first: every transaction
        (``kind`` 'trade', ``type`` buy/sell) and every corporate-action event (``kind``
        'event', ``type`` split/cash_in_lieu/dividend/action), merged in the order they
        happened. See README "Corporate actions" for the fields."""
        txs = self.system.transactions(algo_id)
        evs = dbc.events(self.system, algo_id)
        out: list[dict[str, Any]] = []
        i = 0
        for tx in txs:
            while i < len(evs) and tx["id"] > evs[i]["after_tx_id"]:
                out.append(_event_row(evs[i]))
                i += 1
            out.append(dict(tx, kind="trade"))
        out.extend(_event_row(e) for e in evs[i:])
        return out

    def corporate_events(self, algo_id: int | None = None) -> list[dict[str, Any]]:
        return [_event_row(e) for e in dbc.events(self.system, algo_id)]

    def corporate_actions(self, ticker: str | None = None) -> list[dict[str, Any]]:
        return dbc.actions(self.system, ticker)


def _event_row(ev: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "event", "id": ev["id"], "algo_id": ev["algo_id"], "ticker": ev["ticker"],
        "type": ev["type"], "timestamp": ev["timestamp"], "shares": ev["shares"],
        "shares_before": ev["shares_before"], "shares_after": ev["shares_after"],
        "fraction": ev["fraction"], "cash": ev["cash"], "price": ev["price"],
        "avg_cost": ev["avg_cost"], "old_rate": ev["old_rate"], "new_rate": ev["new_rate"],
        "action_id": ev["action_id"], "note": ev["note"],
    }


__all__ = ["CorporateDesk", "describe", "ex_epoch"]
