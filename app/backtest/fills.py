"""The backtest's fills come from the shared fill model (``app.broker.fill_model``), the same
module the demo's simulated broker uses: see there for the price rule, slippage, commission
and what may be refused."""

from __future__ import annotations

from app.broker.fill_model import PRICE_RULES as FILL_RULES
from app.broker.fill_model import FillModel, fill_price, refusal

__all__ = ["FILL_RULES", "FillModel", "fill_price", "refusal"]
