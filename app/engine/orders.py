"""Orders and fills: intents written before sending, netting, fills from cumulative updates.

Client order ids: ``at-{algo_id}-{YYYYmmddHHMM}`` for an algorithm's order in a minute,
``at-net-{TICKER}-{YYYYmmddHHMM}`` for the one broker order sent for netted opposite
decisions, ``at-{algo_id}-{YYYYmmddHHMMSS}-L`` for a liquidation. A retry or a restart reuses
the same id, so the broker never places an order twice.

Fills: a broker reports cumulative ``filled_qty``/``filled_avg_price``; each change becomes one
transaction whose ``fill_id`` is ``{client_order_id}:{cumulative qty}`` (netted orders:
``{net id}:{algo id}:{that algorithm's cumulative share}``), unique in the DB, so replaying an
update (a restart, a duplicate stream message) records nothing twice.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.broker import retry
from app.broker.base import (
    TERMINAL_STATUSES,
    Broker,
    BrokerError,
    OrderRequest,
    OrderUpdate,
    PositionDiff,
    ReconcileReport,
    Side,
    fill_delta,
)
from app.engine.decisions import Decision
from app.testhooks import pause_point
from db.system import OrderRow, SystemStore, Transaction
from db.timeutil import iso_z

logger = logging.getLogger(__name__)

NOT_SENT_REASON = "never reached the broker (found unsent after a restart or a failed send)"


def stamp(minute: datetime) -> str:
    return minute.strftime("%Y%m%d%H%M")


def algo_order_id(algo_id: int, minute: datetime, prefix: str = "at") -> str:
    return f"{prefix}-{algo_id}-{stamp(minute)}"


def net_order_id(ticker: str, minute: datetime, prefix: str = "at") -> str:
    return f"{prefix}-net-{ticker}-{stamp(minute)}"


def liquidation_order_id(algo_id: int, t: datetime, prefix: str = "at") -> str:
    return f"{prefix}-{algo_id}-{t.strftime('%Y%m%d%H%M%S')}-L"


ORDER_ID_PREFIX_KEY = "order_id_prefix"


def install_prefix(system: SystemStore) -> str:
    """This install's client order id prefix (``at`` + 4 random letters/digits), made at the
    first start and kept in the system DB: two installs trading one Alpaca account (a Pi and
    a desktop) then never take each other's orders for their own."""
    prefix = system.get_setting(ORDER_ID_PREFIX_KEY)
    if not prefix:
        import secrets

        prefix = "at" + "".join(secrets.choice("abcdefghjkmnpqrstuvwxyz23456789")
                                for _ in range(4))
        system.set_setting(ORDER_ID_PREFIX_KEY, prefix)
    return prefix


@dataclass
class PlannedOrder:
    """One order row written as an intent and to be sent to the broker."""

    client_order_id: str
    ticker: str
    side: Side
    qty: int
    algo_ids: tuple[int, ...]


@dataclass
class Wanted:
    """An accepted decision of one algorithm in this tick."""

    algo_id: int
    ticker: str
    decision: Decision


def _allocate(children: list[OrderRow], cum: int) -> dict[int, int]:
    """How many of a net order's ``cum`` filled shares go to each child order (by id order)."""
    out: dict[int, int] = {}
    left = cum
    for ch in children:
        take = max(0, min(ch["qty"] - ch["crossed_qty"], left))
        out[ch["id"]] = take
        left -= take
    return out


class OrderBook:
    """Writes and advances the engine's orders in the system DB.

    Every DB step runs under ``lock`` (the engine core's lock, so the ledgers and the order
    rows change together); every broker call (submit, get_order, positions) runs outside it.
    ``on_rejected(algo_ids, reason)`` is called (under the lock) once per order that turns
    ``rejected``, whichever path told us: the send's answer, the stream, or a poll."""

    def __init__(self, system: SystemStore, broker: Broker, clock: Any,
                 lock: Any = None) -> None:
        self.system, self.broker, self.clock = system, broker, clock
        # A real account may be shared by installs: ids carry this install's prefix there.
        self.prefix = install_prefix(system) if getattr(broker, "shared_account", False) else "at"
        self.lock = lock if lock is not None else threading.RLock()
        self.on_rejected: Callable[[tuple[int, ...], str], None] | None = None

    @property
    def commission_per_share(self) -> float:
        return float(getattr(self.broker, "commission_per_share", 0.0) or 0.0)

    # --- planning ------------------------------------------------------------------------
    def write_intents(self, wanted: list[Wanted], minute: datetime,
                      prices: dict[str, float | None],
                      mark: tuple[str, str] | None = None,
                      extra_marks: list[tuple[str, str]] | None = None,
                      ) -> tuple[list[PlannedOrder], list[Transaction], dict[int, str]]:
        """Write every order intent of this tick in one transaction (nothing is sent yet).

        Opposite decisions on one ticker are netted: the matched shares are crossed internally
        at the last price (each side's transaction recorded now) and one broker order carries
        the difference. Returns (orders to send, crossed transactions, algo_id -> refusal)."""
        minute_iso = iso_z(minute)
        now_iso = iso_z(self.clock.now())
        to_send: list[PlannedOrder] = []
        crossed: list[Transaction] = []
        refused: dict[int, str] = {}
        by_ticker: dict[str, list[Wanted]] = {}
        for w in wanted:
            by_ticker.setdefault(w.ticker, []).append(w)
        with self.lock, self.system.atomic():
            if mark is not None:
                self.system.set_setting(*mark)
            for m in extra_marks or ():
                self.system.set_setting(*m)
            for ticker, items in by_ticker.items():
                buys = [w for w in items if w.decision.action == "buy"]
                sells = [w for w in items if w.decision.action == "sell"]
                if not (buys and sells):
                    for w in items:
                        coid = algo_order_id(w.algo_id, minute, self.prefix)
                        try:
                            self.system.insert_order_row(coid, w.algo_id, ticker, w.decision.action,
                                                         w.decision.shares, minute_iso)
                        except sqlite3.IntegrityError:
                            refused[w.algo_id] = f"an order for this minute exists already ({coid})"
                            continue
                        side: Side = "buy" if w.decision.action == "buy" else "sell"
                        to_send.append(PlannedOrder(coid, ticker, side, w.decision.shares,
                                                    (w.algo_id,)))
                    continue
                crossed += self._net(ticker, buys, sells, minute, minute_iso, now_iso,
                                     prices.get(ticker), to_send)
        return to_send, crossed, refused

    def _net(self, ticker: str, buys: list[Wanted], sells: list[Wanted], minute: datetime,
             minute_iso: str, now_iso: str, price: float | None,
             to_send: list[PlannedOrder]) -> list[Transaction]:
        if price is None:
            raise ValueError(f"no price to cross {ticker} at")
        b = sum(w.decision.shares for w in buys)
        s = sum(w.decision.shares for w in sells)
        matched = min(b, s)
        majority, minority = (buys, sells) if b >= s else (sells, buys)
        net_side: Side | None = "buy" if b > s else "sell" if s > b else None
        parent = net_order_id(ticker, minute, self.prefix) if net_side else None
        txs: list[Transaction | None] = []
        others = ", ".join(str(w.algo_id) for w in buys + sells)
        reason = f"netted with algorithms {others}: {matched} shares crossed at {price:.4f}"
        remaining = matched
        for w in sorted(minority, key=lambda w: w.algo_id) + sorted(majority,
                                                                    key=lambda w: w.algo_id):
            is_minority = w in minority
            cross = w.decision.shares if is_minority else min(w.decision.shares, remaining)
            if not is_minority:
                remaining -= cross
            rest = w.decision.shares - cross
            coid = algo_order_id(w.algo_id, minute, self.prefix)
            oid = self.system.insert_order_row(
                coid, w.algo_id, ticker, w.decision.action, w.decision.shares, minute_iso,
                status="filled" if rest == 0 else "netted", parent=parent if rest else None,
                crossed_qty=cross, filled_qty=cross, filled_avg_price=price if cross else None,
                reason=reason)
            if cross:
                side: Side = "buy" if w.decision.action == "buy" else "sell"
                txs.append(self._record(w.algo_id, ticker, side, cross, price, now_iso, oid,
                                        f"{coid}:x"))
        if parent and net_side:
            qty = abs(b - s)
            self.system.insert_order_row(parent, None, ticker, net_side, qty, minute_iso,
                                         reason=reason)
            to_send.append(PlannedOrder(parent, ticker, net_side, qty,
                                        tuple(w.algo_id for w in majority)))
        logger.info("%s: netted buy %d / sell %d -> %s", ticker, b, s,
                    f"{net_side} {abs(b - s)} at the broker" if net_side else "fully crossed")
        return [t for t in txs if t is not None]

    def _record(self, algo_id: int, ticker: str, side: Side, shares: int, price: float,
                ts: str, order_id: int | None, fill_id: str) -> Transaction | None:
        """Record one fill; None when this ``fill_id`` is recorded already (a replay)."""
        commission = round(shares * self.commission_per_share, 6)
        tx_id = self.system.add_transaction(algo_id, ticker, side, shares, price, ts,
                                            order_id=order_id, fill_id=fill_id,
                                            commission=commission)
        if tx_id is None:
            return None
        logger.info("fill: algorithm %d %s %d %s @ %.4f (%s)", algo_id, side, shares, ticker,
                    price, fill_id)
        return Transaction(id=tx_id, algo_id=algo_id, order_id=order_id, fill_id=fill_id,
                           ticker=ticker, type=side, shares=shares, price=price,
                           commission=commission, timestamp=ts)

    # --- sending -------------------------------------------------------------------------
    def send(self, order: PlannedOrder, attempts: int | None = None,
             check: Callable[[], str | None] | None = None,
             ) -> tuple[list[Transaction], str | None]:
        """Send one intent; return (transactions recorded, error or None).

        The broker retries under the one policy in ``app/broker/retry.py`` (no loop here, so
        tries never multiply): ``attempts`` caps its tries, ``check`` runs before each retry
        and a reason from it (the algorithm was stopped, the minute went stale) means the
        order is not sent again."""
        pause_point("before_submit")
        req = OrderRequest(order.client_order_id, order.ticker, order.side, order.qty)
        last: BrokerError
        try:
            with retry.scope(check=check, attempts=attempts):
                update = self.broker.submit_order(req)
        except BrokerError as e:
            last = e
            logger.warning("order %s: %s", req.client_order_id, e)
        except Exception as e:
            # A bug or an unwrapped network error: we cannot tell whether the order
            # arrived, so treat it like a retryable failure and let the broker say later.
            logger.exception("order %s: sending failed", req.client_order_id)
            last = BrokerError(f"{type(e).__name__}: {e}", retryable=True)
        else:
            txs = self.apply_update(update)
            err = None
            if update.status == "rejected":
                err = f"order rejected by the broker: {update.reason or 'no reason given'}"
            return txs, err
        with self.lock:
            row = self.system.get_order(req.client_order_id)
            if row is not None and row["status"] != "intent":
                return [], None  # the broker's update stream told us meanwhile: it arrived
            if last.retryable:
                # Unknown whether it arrived: stays an intent; the next poll asks the broker.
                with self.system.atomic():
                    self.system.update_order(req.client_order_id, reason=f"send failed: {last}")
                return [], f"order not confirmed by the broker yet: {last}"
        self.apply_update(OrderUpdate(req.client_order_id, "rejected", req.ticker, req.side,
                                      req.qty, reason=str(last)))
        return [], f"order rejected by the broker: {last}"

    # --- updates -------------------------------------------------------------------------
    def apply_update(self, u: OrderUpdate) -> list[Transaction]:
        """Record a broker update (idempotent); return the new transactions."""
        with self.lock:
            return self._apply_update(u)

    def _apply_update(self, u: OrderUpdate) -> list[Transaction]:
        row = self.system.get_order(u.client_order_id)
        if row is None:
            logger.debug("update for an order that is not ours: %s", u.client_order_id)
            return []
        if row["parent"] is not None:
            return []  # a child of a netted order: the broker knows only the parent
        if int(u.filled_qty or 0) < row["filled_qty"] or (
                row["status"] in TERMINAL_STATUSES and not u.is_terminal):
            return []  # an older update arriving after a newer one: nothing to learn
        new_qty = int(u.filled_qty or 0)
        unchanged = (u.status == row["status"] and new_qty == row["filled_qty"]
                     and (not u.broker_order_id or u.broker_order_id == row["broker_order_id"]))
        if unchanged:
            return []
        d = fill_delta(row["filled_qty"], row["filled_avg_price"], new_qty, u.filled_avg_price)
        if d is None and new_qty > row["filled_qty"]:
            # A quantity without a price cannot become a transaction: keep the old figures so
            # the fill is recorded from the next update that carries the price.
            logger.warning("order %s: filled %d reported without a price; waiting",
                           u.client_order_id, new_qty)
            new_qty = row["filled_qty"]
        ts = iso_z(u.timestamp or self.clock.now())
        txs: list[Transaction | None] = []
        with self.system.atomic():
            self.system.update_order(
                u.client_order_id, status=u.status,
                broker_order_id=u.broker_order_id or row["broker_order_id"],
                filled_qty=new_qty,
                filled_avg_price=u.filled_avg_price if d else row["filled_avg_price"],
                reason=u.reason or row["reason"])
            if row["algo_id"] is not None:
                if d:
                    txs.append(self._record(row["algo_id"], row["ticker"], row["side"], d.qty,
                                            d.price, ts, row["id"],
                                            f"{u.client_order_id}:{new_qty}"))
            else:
                txs += self._apply_net(row, u, new_qty, d.price if d else None, ts)
        if u.status == "rejected" or (u.is_terminal and new_qty < row["qty"]):
            logger.warning("order %s %s (%d of %d filled): %s", u.client_order_id, u.status,
                           new_qty, row["qty"], u.reason)
        if u.status == "rejected" and row["status"] != "rejected" and self.on_rejected:
            ids = ((row["algo_id"],) if row["algo_id"] is not None else tuple(
                ch["algo_id"] for ch in self.system.child_orders(row["client_order_id"])
                if ch["algo_id"] is not None))  # children are algorithms' orders: always
            try:
                self.on_rejected(ids, u.reason or "no reason given")
            except Exception:
                logger.exception("rejection hook failed")
        return [t for t in txs if t is not None]

    def _apply_net(self, row: OrderRow, u: OrderUpdate, new_qty: int,
                   price: float | None, ts: str) -> list[Transaction | None]:
        children = self.system.child_orders(row["client_order_id"])
        before = _allocate(children, row["filled_qty"])
        after = _allocate(children, new_qty)
        txs: list[Transaction | None] = []
        if price is not None:
            for ch in children:
                dq = after[ch["id"]] - before[ch["id"]]
                aid = ch["algo_id"]  # always set on a child (an algorithm's own order)
                if dq > 0 and aid is not None:
                    txs.append(self._record(aid, ch["ticker"], ch["side"], dq, price,
                                            ts, ch["id"],
                                            f"{row['client_order_id']}:{ch['algo_id']}:"
                                            f"{after[ch['id']]}"))
        status = u.status if u.is_terminal else ("partially_filled" if new_qty else "netted")
        for ch in children:
            filled = ch["crossed_qty"] + after[ch["id"]]
            self.system.update_child_order(ch["id"], "filled" if filled >= ch["qty"] else status,
                                           filled, u.reason, ts)
        return txs

    def working_by_algo(self) -> dict[int, tuple[int, int]]:
        """Per algorithm, shares still to fill on its open (buy, sell) orders."""
        out: dict[int, tuple[int, int]] = {}
        with self.lock:
            rows = self.system.open_orders()
        for row in rows:
            if row["algo_id"] is None:
                continue
            left = max(0, row["qty"] - row["filled_qty"])
            buy, sell = out.get(row["algo_id"], (0, 0))
            out[row["algo_id"]] = (buy + left, sell) if row["side"] == "buy" else (buy, sell + left)
        return out

    # --- reconcile -----------------------------------------------------------------------
    def poll_open(self, before: datetime | None = None) -> tuple[list[str], list[Transaction]]:
        """Ask the broker about our open orders (of minutes before ``before``, all if None).

        An intent the broker never saw is marked canceled, never re-sent: its minute is gone.
        Returns (client order ids updated, transactions recorded)."""
        updated: list[str] = []
        txs: list[Transaction] = []
        limit = iso_z(before) if before is not None else None
        with self.lock:
            rows = self.system.open_orders()
        rows = [r for r in rows
                if r["parent"] is None and (limit is None or r["minute"] < limit)]
        # One list call answers every order still open at the broker; only those missing
        # from it (filled, canceled or never sent since) are asked about one by one.
        listed: dict[str, OrderUpdate] = {}
        if len(rows) > 1:
            try:
                listed = {u.client_order_id: u for u in self.broker.list_open_orders()}
            except BrokerError as e:
                logger.warning("cannot list the broker's open orders: %s", e)
        for row in rows:
            coid = row["client_order_id"]
            u = listed.get(coid)
            if u is None:
                try:
                    u = self.broker.get_order(coid)
                except BrokerError as e:
                    logger.warning("cannot ask the broker about order %s: %s", coid, e)
                    continue
            if u is None:
                if row["status"] in ("intent", "submitted"):
                    logger.warning("order %s was never sent; marking it canceled", coid)
                    txs += self.apply_update(OrderUpdate(coid, "canceled", row["ticker"],
                                                         row["side"], row["qty"],
                                                         reason=NOT_SENT_REASON))
                    updated.append(coid)
                else:
                    logger.error("the broker does not know order %s (status %s)", coid,
                                 row["status"])
                continue
            new = self.apply_update(u)
            if new or u.status != row["status"]:
                updated.append(coid)
            txs += new
        return updated, txs

    def reconcile(self) -> tuple[ReconcileReport, list[Transaction]]:
        """Settle every open order with the broker, then compare positions."""
        updated, txs = self.poll_open(None)
        report = ReconcileReport(orders_updated=updated)
        try:
            broker_pos = self.broker.get_positions()
        except BrokerError as e:
            logger.warning("cannot read the broker's positions: %s", e)
            return report, txs
        with self.lock:
            ledger_pos = self.system.positions_by_ticker()
        for sym in sorted(set(broker_pos) | set(ledger_pos)):
            b, led = float(broker_pos.get(sym, 0.0)), float(ledger_pos.get(sym, 0))
            if abs(b - led) > 1e-9:
                report.position_diffs.append(PositionDiff(sym, led, b))
        if report.position_diffs:
            logger.warning("positions differ from the broker: %s", ", ".join(
                f"{d.symbol} ledger {d.ledger:g} broker {d.broker:g}"
                for d in report.position_diffs))
        return report, txs


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES
