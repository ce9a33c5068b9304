"""The new-algorithm flow: plugin -> ticker -> capital -> confirm -> working -> done.

On the confirm step each of the plugin's parameters can be changed (numbers on the number
pad, true/false by a tap); the engine checks them again when it creates the algorithm.
"Try it first" backtests the choice on the last few sessions in a process of its own (the
window's ``BacktestJob``; Cancel kills it); the key figures are formatted here, and any change
to the choice drops them. The ticker step asks the broker as soon as the typing pauses (and
again on Next if it has no answer yet), on the worker thread: an unknown symbol is refused on
that step, a known one shows its name and last price there ("AMZN · Amazon.com · $184.38"),
before Next. A broker that does not answer within ``CHECK_TIMEOUT_MS`` is said so, and the pad
stays usable meanwhile. The capital step shows how many whole shares the amount buys at that
price.

Typed input stays here across steps, so a refusal (unknown ticker, too much capital) sends
the user back to the step to fix with the input kept and the reason shown. The engine is the
judge: this model only checks the shape of the input before asking it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from typing import Any

from PySide6.QtCore import Property, QObject, QTimer, Signal, Slot

from app.engine.plugins import check_range
from app.typedvalue import ValueTypeError, parse_typed
from app.ui import format as fmt
from db.market import TICKER_RE

logger = logging.getLogger(__name__)

STEPS = ("plugin", "ticker", "capital", "confirm", "working")
PARAM_STEP = "param"  # editing one parameter; comes back to "confirm"
MAX_TICKER = 10
MAX_CAPITAL_CHARS = 12
BACKTEST_DAYS = 5
CAPITAL_RE = re.compile(r"^\d{0,10}(\.\d{0,2})?$")
CHECK_DELAY_MS = 600     # the ticker is checked once typing pauses this long
CHECK_TIMEOUT_MS = 10_000  # a broker slower than this is said to be slow


def plugin_title(p: dict[str, Any]) -> str:
    """The name people see: the plugin's declared ``display_name``, else its module name made
    readable (``sma_crossover`` -> ``SMA crossover``)."""
    return fmt.plugin_name(p.get("name") or "", p.get("display_name"))


def shares_text(capital: float | None, price: float | None, ticker: str) -> str:
    """'Buys 54 shares of AMZN at $184.38 (last price)' for the capital step."""
    if not price or price <= 0 or not math.isfinite(price):
        return ""
    if capital is None or capital <= 0:
        return f"{ticker} last traded at {fmt.price(price)}."
    n = int(math.floor(capital / price + 1e-9))
    if n < 1:
        return f"Not enough for one share of {ticker} at {fmt.price(price)}."
    return (f"Buys {n:,} share{'s' if n != 1 else ''} of {ticker} at {fmt.price(price)} "
            "(last price).")


def params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in params.items()) if params else "no parameters"


def parse_param(default: Any, text: str) -> Any:
    """``text`` as the type of the parameter's default (the engine's rules, app/typedvalue.py);
    ValueError with what to enter."""
    if not isinstance(default, bool | int | float) and not text:
        raise ValueError("Enter a value.")
    try:
        return parse_typed(type(default), text)
    except ValueTypeError as e:
        raise ValueError(f"Enter {e.expected}.") from None


def range_text(spec: Any) -> str:
    """'2 to 200' / 'at least 2' / '' for a declared (min, max, step)."""
    lo, hi, step = spec if spec else (None, None, None)
    text = (f"{lo:g} to {hi:g}" if lo is not None and hi is not None
            else f"at least {lo:g}" if lo is not None else f"at most {hi:g}" if hi is not None
            else "")
    return text + (f", steps of {step:g}" if text and step else "")


def _pct(x: Any) -> str:
    return fmt.signed_pct(float(x) * 100) if isinstance(x, int | float) else "\u2014"


def _tone(x: Any) -> str:
    return {1: "good", -1: "bad"}.get(fmt.sign_of(float(x) * 100), "") \
        if isinstance(x, int | float) else ""


def backtest_figures(report: dict[str, Any]) -> list[dict[str, str]]:
    """The key figures of a backtest report (report.json's dict) as label/value/tone."""
    m = report.get("metrics") or {}
    win = m.get("win_rate")
    trades = int(m.get("trades") or 0)
    open_trades = int(m.get("open_trades") or 0)
    return [
        {"label": "Total return", "value": _pct(m.get("total_return")),
         "tone": _tone(m.get("total_return"))},
        {"label": "Buy and hold", "value": _pct(m.get("buy_and_hold_return")),
         "tone": _tone(m.get("buy_and_hold_return"))},
        {"label": "Max drawdown", "value": _pct(m.get("max_drawdown")),
         "tone": _tone(m.get("max_drawdown"))},
        {"label": "Trades" + (f" (+{open_trades} open)" if open_trades else ""),
         "value": str(trades), "tone": ""},
        {"label": "Win rate", "value": "\u2014" if win is None else f"{float(win):.0%}",
         "tone": ""},
    ]


def backtest_period(report: dict[str, Any]) -> str:
    m = report.get("metrics") or {}
    start, end = str(report.get("start") or "")[:10], str(report.get("end") or "")[:10]
    sessions = int(m.get("sessions") or 0)
    span = f"{start} to {end}" if start and end and start != end else start or end
    return (f"Backtest of the last {sessions} session{'s' if sessions != 1 else ''}"
            + (f" ({span})" if span else "") + " with " + fmt.money(m.get("initial_capital")))


class NewAlgoViewModel(QObject):
    changed = Signal()
    pluginsChanged = Signal()
    # plugin, ticker, capital, params: the window hands it to the worker thread.
    createRequested = Signal(str, str, float, dict)
    # request number, plugin, ticker, capital, params: a backtest on the worker thread.
    backtestRequested = Signal(int, str, str, float, dict)
    backtestCancelRequested = Signal()
    # request number, ticker, a threading.Event set once the answer is no longer wanted (the
    # worker then skips the broker call or the history load it has not started yet)
    tickerCheckRequested = Signal(int, str, object)
    finished = Signal(int)   # the new algorithm's id
    closed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._plugins: list[dict[str, Any]] = []
        self._free: float | None = None
        self._bt_seq = 0
        self._check_seq = 0
        self._check_token = threading.Event()
        # The check starts when typing pauses; a broker that does not answer is said so.
        self._check_delay = QTimer(self)
        self._check_delay.setSingleShot(True)
        self._check_delay.setInterval(CHECK_DELAY_MS)
        self._check_delay.timeout.connect(lambda: self._start_check(advance=False))
        self._check_timeout = QTimer(self)
        self._check_timeout.setSingleShot(True)
        self._check_timeout.setInterval(CHECK_TIMEOUT_MS)
        self._check_timeout.timeout.connect(self._check_timed_out)
        self.reset()

    def reset(self) -> None:
        self._step = "plugin"
        self._plugin = ""
        self._ticker = ""
        self._capital = ""
        self._message = ""
        self._params: dict[str, Any] = {}
        self._edit_name = ""
        self._edit_text = ""
        self._checking = False
        self._ticker_info = ""
        self._price: float | None = None
        self._advance = False  # Next was tapped while the check runs: go on when it is known
        self._check_seq += 1
        self._check_token.set()
        self._check_delay.stop()
        self._check_timeout.stop()
        self._leave_asked: tuple | None = None
        self._clear_backtest()
        self.changed.emit()

    def _clear_backtest(self) -> None:
        """Forget the backtest: a result still coming for the old choice is then ignored (a
        running one is cancelled)."""
        if getattr(self, "_bt_state", "") == "running":
            self.backtestCancelRequested.emit()
        self._bt_seq += 1
        self._bt_state = ""  # "" | running | done | failed
        self._bt_message = ""
        self._bt_figures: list[dict[str, str]] = []
        self.backtest_report: dict[str, Any] | None = None

    # --- inputs from the window ----------------------------------------------------------
    @Slot(list)
    def set_plugins(self, plugins: list) -> None:
        self._plugins = [dict(p) for p in plugins if p.get("name")]
        self.pluginsChanged.emit()
        self.changed.emit()

    def set_free(self, free: float | None) -> None:
        self._free = free
        self.changed.emit()

    # --- what QML shows ------------------------------------------------------------------
    @Property(str, notify=changed)
    def step(self) -> str:
        return self._step

    @Property(int, notify=changed)
    def stepIndex(self) -> int:
        return STEPS.index("confirm" if self._step == PARAM_STEP else self._step)

    @Property(list, notify=changed)
    def paramList(self) -> list:
        """The chosen plugin's parameters with their current values, for the confirm step."""
        p = self._plugin_info() or {}
        defaults = p.get("params") or {}
        out = []
        for k, default in defaults.items():
            v = self._params.get(k, default)
            kind = ("bool" if isinstance(default, bool) else "int" if isinstance(default, int)
                    else "float" if isinstance(default, float) else "text")
            out.append({"name": k, "valueText": str(v).lower() if kind == "bool" else str(v),
                        "kind": kind, "changed": v != default,
                        "rangeText": range_text(self._range_of(k))})
        return out

    @Property(str, notify=changed)
    def editName(self) -> str:
        return self._edit_name

    @Property(str, notify=changed)
    def editText(self) -> str:
        return self._edit_text

    @Property(list, notify=pluginsChanged)
    def plugins(self) -> list:
        return [{"name": p["name"], "title": plugin_title(p),
                 "description": p.get("description") or "",
                 "paramsText": params_text(p.get("params") or {}),
                 "error": p.get("error") or "", "usable": not p.get("error")}
                for p in self._plugins]

    @Property(str, notify=changed)
    def plugin(self) -> str:
        return self._plugin

    @Property(str, notify=changed)
    def pluginTitle(self) -> str:
        return self._plugin_title() if self._plugin else ""

    @Property(str, notify=changed)
    def pluginDescription(self) -> str:
        p = self._plugin_info()
        return (p.get("description") or "") if p else ""

    @Property(str, notify=changed)
    def pluginParams(self) -> str:
        p = self._plugin_info()
        return params_text({**(p.get("params") or {}), **self._params}) if p else ""

    @Property(str, notify=changed)
    def ticker(self) -> str:
        return self._ticker

    @Property(bool, notify=changed)
    def checking(self) -> bool:
        """The ticker is being checked with the broker."""
        return self._checking

    @Property(str, notify=changed)
    def tickerInfo(self) -> str:
        """"AMZN · Amazon.com · $184.38" once the broker knows the ticker."""
        return self._ticker_info

    @Property(str, notify=changed)
    def sharesText(self) -> str:
        """How many whole shares the capital buys at the checked last price."""
        return shares_text(self._capital_value(), self._price, self._ticker)

    @Property(str, notify=changed)
    def capitalText(self) -> str:
        return self._capital

    @Property(str, notify=changed)
    def capitalShown(self) -> str:
        v = self._capital_value()
        return fmt.money(v) if v is not None else "$0"

    @Property(str, notify=changed)
    def freeText(self) -> str:
        return "Free for new algorithms: " + (fmt.money(self._free) if self._free is not None
                                              else "\u2014")

    @Property(str, notify=changed)
    def message(self) -> str:
        return self._message

    @Property(str, notify=changed)
    def summary(self) -> str:
        v = self._capital_value()
        return (f"{self._plugin_title()} on {self._ticker} with {fmt.money(v)}"
                if v is not None else "")

    @Property(str, notify=changed)
    def backtestState(self) -> str:
        return self._bt_state

    @Property(str, notify=changed)
    def backtestMessage(self) -> str:
        return self._bt_message

    @Property(list, notify=changed)
    def backtestFigures(self) -> list:
        return self._bt_figures

    @Property(str, notify=changed)
    def backtestButtonText(self) -> str:
        return ("Cancel backtest" if self._bt_state == "running"
                else f"Backtest last {BACKTEST_DAYS} days")

    def _plugin_title(self) -> str:
        p = self._plugin_info()
        return plugin_title(p) if p else fmt.readable_name(self._plugin)

    def _plugin_info(self) -> dict[str, Any] | None:
        return next((p for p in self._plugins if p["name"] == self._plugin), None)

    def _range_of(self, name: str) -> Any:
        """The plugin's declared (min, max, step) for a parameter, or None."""
        return ((self._plugin_info() or {}).get("ranges") or {}).get(name)

    def _capital_value(self) -> float | None:
        try:
            v = float(self._capital)
        except ValueError:
            return None
        return v if math.isfinite(v) else None

    # --- actions from QML ----------------------------------------------------------------
    @Slot(str)
    def choosePlugin(self, name: str) -> None:
        p = next((p for p in self._plugins if p["name"] == name), None)
        if p is None:
            return
        if p.get("error"):
            self._message = f"{name} cannot be used: {p['error']}"
            self.changed.emit()
            return
        self._plugin, self._step, self._message = name, "ticker", ""
        self._params = dict(p.get("params") or {})
        self.changed.emit()

    def _forget_ticker_check(self) -> None:
        self._check_seq += 1
        self._check_token.set()  # typed on: the old ticker's history need not be loaded
        self._checking, self._ticker_info, self._price, self._advance = False, "", None, False
        self._check_delay.stop()
        self._check_timeout.stop()

    def _typed(self) -> None:
        """The ticker changed: forget the old answer, ask about the new one once typing
        pauses."""
        self._forget_ticker_check()
        if TICKER_RE.match(self._ticker):
            self._check_delay.start()

    def _start_check(self, advance: bool) -> None:
        """Ask the worker about the typed ticker (a number tells its answer from older ones)."""
        if self._step != "ticker" or not TICKER_RE.match(self._ticker):
            return
        self._check_delay.stop()
        self._advance = self._advance or advance
        if self._checking:
            return  # the answer on its way goes on if Next asked for it
        self._check_seq += 1
        self._check_token = threading.Event()
        self._checking, self._message = True, ""
        self._check_timeout.start()
        self.changed.emit()
        self.tickerCheckRequested.emit(self._check_seq, self._ticker, self._check_token)

    def _check_timed_out(self) -> None:
        if not self._checking or self._step != "ticker":
            return
        self._checking, self._advance = False, False
        self._message = (f"The broker has not answered about {self._ticker} in "
                         f"{CHECK_TIMEOUT_MS // 1000} s. Tap Next to ask again.")
        self.changed.emit()

    @Slot(str)
    def key(self, ch: str) -> None:
        """A key on the current step's keypad."""
        if self._step == "ticker":
            ch = ch.upper()
            if len(self._ticker) < MAX_TICKER and (ch.isalnum() or ch == "."):
                self._ticker += ch
                self._typed()
        elif self._step == "capital":
            candidate = self._capital + ch
            if len(candidate) <= MAX_CAPITAL_CHARS and CAPITAL_RE.match(candidate):
                self._capital = candidate
        elif self._step == PARAM_STEP and len(self._edit_text) < 24:
            if ch == "-" and self._edit_text:
                return  # a minus sign only in front
            self._edit_text += ch
        self._message = ""
        self.changed.emit()

    @Slot(str)
    def editParam(self, name: str) -> None:
        """Open ``name`` for editing (booleans simply flip)."""
        p = self._plugin_info() or {}
        defaults = p.get("params") or {}
        if self._step != "confirm" or name not in defaults:
            return
        value = self._params.get(name, defaults[name])
        if isinstance(defaults[name], bool):
            self._params[name] = not value
            self._clear_backtest()
        else:
            self._step, self._edit_name, self._edit_text = PARAM_STEP, name, str(value)
            self._message = ""
        self.changed.emit()

    @Slot()
    def backspace(self) -> None:
        if self._step == "ticker":
            self._ticker = self._ticker[:-1]
            self._typed()
            self._message = ""
        elif self._step == "capital":
            self._capital = self._capital[:-1]
        elif self._step == PARAM_STEP:
            self._edit_text = self._edit_text[:-1]
        self.changed.emit()

    @Slot()
    def next(self) -> None:
        if self._step == "ticker":
            if not TICKER_RE.match(self._ticker):
                self._message = ("A ticker is 1 to 10 letters, digits or '.', starting with a "
                                 "letter (e.g. AAPL, BRK.B).")
            elif self._ticker_info and not self._checking:
                self._step, self._message = "capital", ""  # already checked
            else:  # ask now (or let the answer on its way go on to the capital)
                self._start_check(advance=True)
                return
        elif self._step == PARAM_STEP:
            default = ((self._plugin_info() or {}).get("params") or {}).get(self._edit_name)
            try:
                value = parse_param(default, self._edit_text)
                problem = check_range(self._range_of(self._edit_name), self._edit_name, value)
                if problem:  # the plugin's declared range: refused here, as the engine would
                    raise ValueError(problem.removeprefix(f"parameter {self._edit_name!r} ")
                                     + ".")
            except ValueError as e:
                self._message = f"{self._edit_name}: {e}"
            else:
                if value != self._params.get(self._edit_name):
                    self._clear_backtest()
                self._params[self._edit_name] = value
                self._step, self._message = "confirm", ""
        elif self._step == "capital":
            v = self._capital_value()
            if v is None or v <= 0:
                self._message = "Enter an amount above $0."
            elif self._free is not None and v > self._free + 1e-9:
                self._message = f"Only {fmt.money(self._free)} is free for new algorithms."
            else:
                self._step, self._message = "confirm", ""
        self.changed.emit()

    @Slot()
    def back(self) -> None:
        if self._step == "working":
            return
        if self._step == PARAM_STEP:  # leave the parameter as it was
            self._step, self._message = "confirm", ""
            self.changed.emit()
            return
        i = STEPS.index(self._step)
        if i == 0:
            self.closed.emit()
            return
        if self._step == "confirm":  # the ticker or capital may change: figures would be stale
            self._clear_backtest()
        self._step, self._message = STEPS[i - 1], ""
        self.changed.emit()

    @Slot()
    def cancel(self) -> None:
        """Cancel while changing a parameter goes back one step. Leaving with choices made
        (a ticker typed, a capital, the confirm step) asks first: a second Cancel, with
        nothing changed in between, leaves."""
        if self._step == PARAM_STEP:
            self.back()
            return
        if self._step == "working":
            return
        if self._has_choices() and self._leave_asked != self._leave_key():
            self._leave_asked = self._leave_key()
            self._message = ("Leave without creating it? Tap Cancel again to leave, or Back "
                             "or Next to go on.")
            self.changed.emit()
            return
        self._leave_asked = None
        self.reset()
        self.closed.emit()

    def _has_choices(self) -> bool:
        return self._step in ("capital", "confirm") or (self._step == "ticker"
                                                         and bool(self._ticker))

    def _leave_key(self) -> tuple:
        return (self._step, self._plugin, self._ticker, self._capital,
                tuple(sorted((k, repr(v)) for k, v in self._params.items())))

    @Property(bool, notify=changed)
    def leaveAsked(self) -> bool:
        """Cancel was tapped once with choices made: the next Cancel leaves."""
        return self._leave_asked == self._leave_key()

    @Property(bool, notify=changed)
    def hasFree(self) -> bool:
        return self._free is not None and self._free > 0

    @Slot(float)
    def capitalShare(self, share: float) -> None:
        """A capital chip: 25 %, 50 % or all of the money free for new algorithms."""
        if self._step != "capital" or self._free is None or self._free <= 0:
            return
        share = max(0.0, min(1.0, share))
        if share < 1:  # whole dollars ($10,000 rather than $9,999.99 of $39,999.97 free)
            v = min(float(round(self._free * share)), math.floor(self._free * 100) / 100)
        else:  # every free cent
            v = math.floor(self._free * 100) / 100
        self._capital = f"{v:.2f}".rstrip("0").rstrip(".")
        self._message = ""
        self.changed.emit()

    @Slot()
    def cancelBacktest(self) -> None:
        if self._bt_state != "running":
            return
        self.backtestCancelRequested.emit()
        self._bt_seq += 1
        self._bt_state, self._bt_message, self._bt_figures = "", "Backtest cancelled.", []
        self.changed.emit()

    @Slot()
    def confirm(self) -> None:
        v = self._capital_value()
        if self._step != "confirm" or v is None:
            return
        self._step = "working"
        self._message = (f"Checking {self._ticker} with the broker and loading its history\u2026")
        self.changed.emit()
        self.createRequested.emit(self._plugin, self._ticker, v, dict(self._params))

    @Slot()
    def backtest(self) -> None:
        """Try the choice on the last sessions first; the worker thread runs it."""
        v = self._capital_value()
        if self._step != "confirm" or v is None:
            return
        if self._bt_state == "running":  # the same button cancels
            self.cancelBacktest()
            return
        self._clear_backtest()
        self._bt_state = "running"
        self._bt_message = (f"Running {self._plugin_title()} on the last {BACKTEST_DAYS} days of "
                            f"{self._ticker}\u2026")
        self.changed.emit()
        self.backtestRequested.emit(self._bt_seq, self._plugin, self._ticker, v,
                                    dict(self._params))

    # --- results from the worker ---------------------------------------------------------
    @Slot(int, str, bool, str, float, bool)
    def on_ticker_checked(self, seq: int, ticker: str, ok: bool, text: str,
                          price: float = -1.0, final: bool = True) -> None:
        """The broker's answer: shown on the ticker step; Next, if tapped meanwhile, goes on.
        A known ticker may be answered twice: its name at once, then with the last price once
        its history is loaded (``final``)."""
        if seq != self._check_seq or self._step != "ticker" or ticker != self._ticker:
            return  # typed on since: this answer is for another ticker
        if final:
            self._checking = False
            self._check_timeout.stop()
        if ok:
            self._ticker_info, self._message = text, ""
            self._price = price if price > 0 else None
            if self._advance and final:
                self._advance = False
                self._step = "capital"
        else:
            self._ticker_info, self._price, self._message = "", None, text
            self._advance = False
        self.changed.emit()

    @Slot(int, str)
    def on_created(self, algo_id: int, ticker: str) -> None:
        if self._step != "working":
            return
        self.reset()
        self.finished.emit(algo_id)

    @Slot(str, str, float)
    def on_failed(self, kind: str, message: str, free: float) -> None:
        if self._step != "working":
            return
        if kind == "capital":
            if free >= 0:
                self._free = free
                message = f"{message} Free for new algorithms: {fmt.money(free)}."
            self._step = "capital"
        elif kind == "ticker":
            self._step = "ticker"
            self._forget_ticker_check()
        elif kind == "plugin":
            self._step = "plugin"
        else:  # e.g. a parameter the plugin refuses: fix it on the confirm step
            self._step = "confirm"
        if self._step != "confirm":
            self._clear_backtest()
        self._message = message
        self.changed.emit()

    @Slot(int, dict)
    def on_backtest_done(self, seq: int, report: dict) -> None:
        if seq != self._bt_seq or self._bt_state != "running":
            return  # the choice changed since: these figures are not for it
        self.backtest_report = dict(report)
        self._bt_state = "done"
        self._bt_figures = backtest_figures(report)
        self._bt_message = backtest_period(report)
        self.changed.emit()

    @Slot(int, str)
    def on_backtest_failed(self, seq: int, message: str) -> None:
        if seq != self._bt_seq or self._bt_state != "running":
            return
        self._bt_state = "failed"
        self._bt_figures = []
        self._bt_message = f"The backtest could not run: {message}"
        self.changed.emit()
