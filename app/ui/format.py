"""Text for numbers on screen: money, signed money, percentages, durations. Pure functions."""

from __future__ import annotations

import math

MINUS = "\u2212"  # a real minus sign: as wide as '+', easier to read than a hyphen


def money(x: float | None, cents: bool = True) -> str:
    if x is None or not math.isfinite(x):
        return "\u2014"
    sign = MINUS if x < 0 else ""
    return f"{sign}${abs(x):,.2f}" if cents else f"{sign}${abs(x):,.0f}"


def signed_money(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "\u2014"
    if round(x, 2) == 0:
        return "$0.00"
    return ("+" if x > 0 else MINUS) + f"${abs(x):,.2f}"


def signed_pct(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "\u2014"
    if round(x, 2) == 0:
        return "0.00%"
    return ("+" if x > 0 else MINUS) + f"{abs(x):,.2f}%"


def price(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "\u2014"
    return f"${x:,.2f}" if x >= 1 else f"${x:.4f}"


def sign_of(x: float | None) -> int:
    if x is None or not math.isfinite(x) or round(x, 2) == 0:
        return 0
    return 1 if x > 0 else -1


def countdown(seconds: float) -> str:
    """``2 d 03:04`` / ``3:04:05`` / ``4:05`` for a count of seconds (never negative)."""
    s = max(0, int(seconds))
    d, rem = divmod(s, 86_400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    if d:
        return f"{d} d {h:02d}:{m:02d}"
    if h:
        return f"{h}:{m:02d}:{sec:02d}"
    return f"{m}:{sec:02d}"


def wait_time(seconds: float) -> str:
    """A wait a person reads at a glance: ``45 s``, ``7 min``, ``2 h 8 min`` (rounded up)."""
    s = max(0, int(math.ceil(seconds)))
    if s < 60:
        return f"{s} s"
    m = -(-s // 60)
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    return f"{h} h {m} min" if m else f"{h} h"


def readable_name(module: str) -> str:
    """A plugin's module name for people: ``sma_crossover`` -> ``SMA crossover``."""
    words = [w for w in str(module).replace("-", "_").split("_") if w]
    if not words:
        return str(module)
    acronyms = {"sma", "ema", "rsi", "macd", "vwap", "atr", "etf"}
    out = [w.upper() if w.lower() in acronyms else w for w in words]
    if out[0] == words[0]:
        out[0] = out[0][:1].upper() + out[0][1:]
    return " ".join(out)


def plugin_name(module: str, declared: object = None) -> str:
    """The name people see for a plugin: its declared ``display_name`` (a class attribute),
    else its module name made readable (``sma_crossover`` -> ``SMA crossover``)."""
    if isinstance(declared, str) and declared.strip():
        return " ".join(declared.split())
    return readable_name(module or "")


# Words that say a message is a program's internals rather than a sentence for a person.
_RAW = ("Traceback", "Error(", "Exception(", "<class ", "errno", " object at 0x")


def human(text: str, fallback: str = "Something went wrong; the log has the details.") -> str:
    """A message fit for a banner: short, no exception reprs. Long or raw text is replaced by
    ``fallback`` (the full text stays in the log)."""
    t = " ".join(str(text or "").split())
    if not t:
        return ""
    if any(r in t for r in _RAW) or t.startswith(("'", '"')):
        return fallback
    return t if len(t) <= 160 else t[:157].rstrip() + "\u2026"
