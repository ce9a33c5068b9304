"""The one exception the backtest shows to a user (no traceback)."""

from __future__ import annotations


class BacktestError(ValueError):
    """Bad input or an impossible request; the message names the problem and how to fix it."""
