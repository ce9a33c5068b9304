"""Risk guard limits changed while the engine runs (Settings screen, ``autotrader guards``).

The config's ``[risk]`` section gives each limit's value at start; a change made here is
written to the system DB (``engine.guard_edits``, one SQLite transaction) *before* the
running guards use it or anyone is told, so it survives a restart and a kill -9. Each stored
change remembers the config value it replaced ("base"): when the config file (or an
environment variable) has been changed since, that newer choice wins at the next start and
the stored change is dropped, with a log line saying so.

Rules, the same for every caller:

- a value is a finite number in the limit's range (a percentage at most 100, a dollar limit
  at most $1 billion, whole numbers where the limit counts), else a message saying which;
- tightening is always allowed; loosening (a higher limit, turning a limit off, fewer
  minutes of cool-down, more refusals before a stop, keeping instead of selling on a guard
  stop) in LIVE mode needs the PIN confirmed by the caller (``confirmed=True``);
- every change is logged (WARNING) with its old and new value and who made it, and kept in
  the last 200 entries of the stored history.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.engine.guards import GuardBook, RiskLimits
from app.engine.model import EngineError
from app.engine.storage import LOCKED_ADVICE, classify
from db.connection import StorageError

if TYPE_CHECKING:
    from db.system import SystemStore

logger = logging.getLogger(__name__)

EDITS_KEY = "engine.guard_edits"
HISTORY_KEEP = 200
MAX_MONEY = 1e9
_EDITS = threading.Lock()  # one guard change at a time (its DB write is outside the core lock)


class GuardLimitError(EngineError):
    """A value a limit cannot take, or an unknown limit."""


class PinRequiredError(EngineError):
    """Loosening a limit in LIVE mode without the PIN."""


@dataclass(frozen=True)
class LimitSpec:
    name: str
    label: str
    kind: str  # money | pct | count | minutes | choice
    maximum: float = MAX_MONEY
    minimum: float = 0.0
    looser: str = "higher"  # higher | lower | keep (choice: "keep" loosens)
    zero_off: bool = True


LimitValue = float | str  # a number (int included), or a choice's word

SPECS: dict[str, LimitSpec] = {s.name: s for s in (
    LimitSpec("algo_max_daily_loss_pct", "Algorithm: daily loss, % of its capital", "pct", 100),
    LimitSpec("algo_max_daily_loss", "Algorithm: daily loss, dollars", "money"),
    LimitSpec("algo_max_drawdown_pct", "Algorithm: % below its peak value", "pct", 100),
    LimitSpec("algo_max_orders_per_day", "Algorithm: orders a day", "count", 100_000),
    LimitSpec("algo_max_order_value", "Algorithm: one order's value, dollars", "money"),
    LimitSpec("account_max_daily_loss_pct", "Account: daily loss, % (stops all)", "pct", 100),
    LimitSpec("account_max_daily_loss", "Account: daily loss, dollars (stops all)", "money"),
    LimitSpec("account_max_minute_order_pct",
              "Account: buys in one minute, % of running capital", "pct", 1000),
    LimitSpec("account_max_minute_order_value", "Account: buys in one minute, dollars",
              "money"),
    LimitSpec("reject_cooldown_minutes", "Broker refusal: minutes to wait", "minutes", 1440,
              looser="lower", zero_off=False),
    LimitSpec("max_rejections", "Broker refusals in a row before a stop", "count", 100,
              minimum=1, zero_off=False),
    LimitSpec("on_guard_stop", "On a guard stop", "choice", looser="keep", zero_off=False),
)}


def parse_value(name: str, raw: Any) -> LimitValue:
    """``raw`` (a number, or text as typed: "2.5", "$1,000", "10%", "off") as the value of
    limit ``name``, or GuardLimitError saying what is wrong."""
    spec = SPECS.get(name)
    if spec is None:
        raise GuardLimitError(f"no risk guard named {name!r} (known: {', '.join(SPECS)})")
    if spec.kind == "choice":
        v = str(raw).strip().lower()
        if v not in ("keep", "sell"):
            raise GuardLimitError(f"{name} is keep or sell, not {raw!r}")
        return v
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise GuardLimitError(f"{name}: {raw!r} is not a number")
    if isinstance(raw, str):
        text = raw.strip().lower().replace(",", "").replace("$", "").rstrip("%").strip()
        if text == "off" and spec.zero_off:
            text = "0"
        try:
            num = float(text)
        except ValueError:
            raise GuardLimitError(f"{name}: {raw!r} is not a number") from None
    else:
        num = float(raw)
    if not math.isfinite(num):
        raise GuardLimitError(f"{name}: {raw!r} is not a finite number")
    if num < 0:
        raise GuardLimitError(f"{name} cannot be negative (0 turns it off)" if spec.zero_off
                              else f"{name} cannot be negative")
    if num < spec.minimum:
        raise GuardLimitError(f"{name} is at least {spec.minimum:g}")
    if num > spec.maximum:
        unit = {"pct": " %", "money": " dollars"}.get(spec.kind, "")
        raise GuardLimitError(f"{name}: {num:g}{unit} is more than the most it takes, "
                              f"{spec.maximum:,.0f}{unit}")
    if spec.kind in ("count", "minutes"):
        if num != int(num):
            raise GuardLimitError(f"{name} is a whole number, not {num:g}")
        return int(num)
    return num


def loosens(name: str, old: LimitValue, new: LimitValue) -> bool:
    """Does changing limit ``name`` from ``old`` to ``new`` let more risk through?"""
    spec = SPECS[name]
    if spec.kind == "choice" or isinstance(old, str) or isinstance(new, str):  # keep | sell
        return old != new and new == spec.looser
    if spec.looser == "lower":
        return new < old
    if spec.zero_off:
        return bool(old) and (new == 0 or new > old)
    return new > old


def shown(name: str, value: Any) -> str:
    """A limit's value as a person reads it ("off" for 0 where 0 turns it off)."""
    spec = SPECS[name]
    if spec.kind == "choice":
        return "sell the shares" if value == "sell" else "keep the shares"
    if spec.zero_off and not value:
        return "off"
    if spec.kind == "money":
        return f"${value:,.2f}".replace(".00", "")
    if spec.kind == "pct":
        return f"{value:g} %"
    if spec.kind == "minutes":
        return f"{value:g} min"
    return f"{value:g}"


def not_saved(name: str, e: BaseException) -> str:
    """Why a change could not be stored, and what to do (the limit is left as it was)."""
    kind = classify(e)
    why = ("another program holds the system database's write lock" if kind == "locked"
           else "the disk is full" if kind == "full" else "the database could not be written")
    advice = {"locked": LOCKED_ADVICE, "full": "free some space on that disk"}.get(kind or "")
    return (f"{name} not changed: it could not be saved: {why} ({e}); "
            + (f"{advice}, then try again" if advice else "try again"))


# --- storage ---------------------------------------------------------------------------------
def _load(system: SystemStore) -> dict[str, Any]:
    try:
        d = json.loads(system.get_setting(EDITS_KEY) or "{}")
    except ValueError:
        logger.error("the stored risk guard changes (%s) are damaged; the config's apply",
                     EDITS_KEY)
        return {"edits": {}, "history": []}
    if not isinstance(d, dict):
        d = {}
    edits = d.get("edits") if isinstance(d.get("edits"), dict) else {}
    history = d.get("history") if isinstance(d.get("history"), list) else []
    return {"edits": edits, "history": history}


def history(system: SystemStore) -> list[dict[str, Any]]:
    """The stored changes, oldest first: {at, name, old, new, source}."""
    return list(_load(system)["history"])


def with_edits(system: SystemStore, base: RiskLimits) -> RiskLimits:
    """The limits to run with: ``base`` (the config's) with the stored changes applied,
    except those whose config value has changed since (the newer choice wins)."""
    edits = _load(system)["edits"]
    changes: dict[str, Any] = {}
    for name, e in edits.items():
        if name not in SPECS or not isinstance(e, dict):
            continue
        was = getattr(base, name)
        if e.get("base") != was:
            logger.warning("risk guard %s: the config now says %r (it said %r when %r was "
                           "set %s); the config's value applies", name, was, e.get("base"),
                           e.get("value"), e.get("source", "in the app"))
            continue
        try:
            changes[name] = parse_value(name, e.get("value"))
        except GuardLimitError as err:
            logger.error("stored risk guard change ignored: %s", err)
    if not changes:
        return base
    logger.info("risk guards changed in the app apply: %s",
                ", ".join(f"{k}={v!r}" for k, v in changes.items()))
    return dataclasses.replace(base, **changes)


def limits_in_force(system_db: str | Path, base: RiskLimits) -> tuple[RiskLimits, str]:
    """The limits the app runs with (the engine's read at start, ``with_edits``) from the
    system DB at ``system_db``, read-only, and a sentence saying where they come from. No DB
    there, or one that cannot be read: the config's (``base``), and the sentence says why."""
    from db.system import SystemStore

    path = Path(system_db)
    if not path.is_file():
        return base, f"the config's [risk] ({path} does not exist: no changes made in the app)"
    try:
        store = SystemStore(path, readonly=True)
        try:
            limits = with_edits(store, base)
        finally:
            store.close()
    except (sqlite3.Error, OSError, StorageError) as e:
        return base, (f"the config's [risk] (the changes made in the app could not be read "
                      f"from {path}: {e})")
    changed = [n for n in SPECS if getattr(limits, n) != getattr(base, n)]
    if not changed:
        return base, f"the config's [risk] (no change made in the app applies; {path})"
    what = ", ".join(f"{n} {shown(n, getattr(base, n))} -> {shown(n, getattr(limits, n))}"
                     for n in changed)
    return limits, (f"the limits in force: the config's [risk] with the changes made in the "
                    f"app ({what}; {path})")


def guard_book(system: SystemStore, base: RiskLimits) -> GuardBook:
    """The engine's GuardBook at start: the config's limits with the stored changes."""
    book = GuardBook(with_edits(system, base))
    book.base = base
    return book


@dataclass(frozen=True)
class GuardChange:
    name: str
    old: Any
    new: Any
    loosened: bool
    at: str


class GuardEditor:
    """Engine mixin: read and change the running risk limits (the core's lock, DB first)."""

    if TYPE_CHECKING:
        from app.engine.core import CoreLock

        mode: str
        system: SystemStore
        guards: GuardBook
        _lock: CoreLock

        def _emit(self, method: str, *args: Any) -> None: ...

    def guard_limits(self) -> list[dict[str, Any]]:
        """Every editable limit: name, label, kind, value, shown text, the config's value and
        whether it was changed in the app."""
        with self._lock:
            lim = self.guards.limits
            base = self.guards.base or lim
        return [{"name": n, "label": s.label, "kind": s.kind, "value": getattr(lim, n),
                 "shown": shown(n, getattr(lim, n)), "config": getattr(base, n),
                 "edited": getattr(lim, n) != getattr(base, n), "maximum": s.maximum,
                 "zero_off": s.zero_off}
                for n, s in SPECS.items()]

    def check_guard_limit(self, name: str, raw: Any) -> tuple[LimitValue, LimitValue, bool]:
        """(old, new, loosens) for a proposed change, without making it (GuardLimitError
        when the value cannot be taken)."""
        new = parse_value(name, raw)
        with self._lock:
            old = getattr(self.guards.limits, name)
        return old, new, loosens(name, old, new)

    def set_guard_limit(self, name: str, raw: Any, *, confirmed: bool = False,
                        source: str = "in the app") -> GuardChange:
        """Change one limit now: validated, PIN rule (module doc), stored, then applied.

        The DB write happens outside the core's lock (a DB held by another process can make
        it wait for seconds: the panic button must not); edits wait for each other instead."""
        new = parse_value(name, raw)
        with _EDITS:
            with self._lock:
                lim = self.guards.limits
                old = getattr(lim, name)
                loose = loosens(name, old, new)
                if loose and self.mode == "live" and not confirmed:
                    raise PinRequiredError(f"raising or turning off {name} in LIVE mode needs "
                                           "the PIN")
                upd: dict[str, Any] = {name: new}
                try:
                    dataclasses.replace(lim, **upd)  # the limits' own checks
                except ValueError as e:
                    raise GuardLimitError(str(e)) from None
            at = datetime.now(UTC).isoformat(timespec="seconds")  # wall time, not demo's
            change = GuardChange(name, old, new, loose, at)
            if new == old:
                return change
            try:
                self._store_edit(change, source)
            except (sqlite3.Error, OSError) as e:
                raise GuardLimitError(not_saved(name, e)) from None
            with self._lock:  # only edits change the limits, and they wait for each other
                self._apply_limits(dataclasses.replace(self.guards.limits, **upd))
        logger.warning("risk guard %s changed %s from %s to %s (%s)%s", name, source,
                       shown(name, old), shown(name, new), f"{old!r} -> {new!r}",
                       ", loosened with the PIN" if loose and self.mode == "live" else "")
        self._emit("on_guards_changed", change)
        return change

    def _store_edit(self, change: GuardChange, source: str) -> None:
        """Written (one transaction) before the running guards use the new value."""
        base = self.guards.base or self.guards.limits
        with self.system.atomic():
            d = _load(self.system)
            edits: dict[str, Any] = d["edits"]
            if change.new == getattr(base, change.name):
                edits.pop(change.name, None)  # back to the config's value
            else:
                edits[change.name] = {"value": change.new, "base": getattr(base, change.name),
                                      "at": change.at, "source": source}
            hist: list[Any] = d["history"]
            hist.append({"at": change.at, "name": change.name, "old": change.old,
                         "new": change.new, "source": source})
            self.system.set_setting(EDITS_KEY, json.dumps(
                {"edits": edits, "history": hist[-HISTORY_KEEP:]}))

    def _apply_limits(self, limits: RiskLimits) -> None:
        self.guards.limits = limits
