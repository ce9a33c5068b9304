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
    return ("+" if x > 0 else MINUS) + f"{abs(x):.2f}%"


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
