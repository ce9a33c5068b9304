"""Building alpaca-py clients from our settings, with two fixes to their HTTP behaviour.

1. alpaca-py retries 429 and 504 itself, three times with fixed 3 s sleeps, and it retries a
   504 on ``POST /v2/orders`` blindly. We switch that off and retry ourselves: backoff we can
   tune, and an order is looked up by client order id before any resubmit.
2. alpaca-py's ``requests.Session`` has no timeout, so a half-open connection would block a
   tick forever. We give every request one.

Both reach into two private attributes (``_retry``, ``_session``) that alpaca-py has kept
since 0.8; ``harden`` checks they exist so an upgrade that drops them fails loudly in tests.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

from app.config import Settings

logger = logging.getLogger(__name__)

PAPER_TRADING_URL = "https://paper-api.alpaca.markets"
LIVE_TRADING_URL = "https://api.alpaca.markets"
PAPER_TRADE_STREAM = "wss://paper-api.alpaca.markets/stream"
LIVE_TRADE_STREAM = "wss://api.alpaca.markets/stream"
DATA_STREAM = "wss://stream.data.alpaca.markets/v2/{feed}"


class _TimeoutSession(requests.Session):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any):  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


def harden(client: Any, timeout: float) -> Any:
    """No built-in retries, and a timeout on every request (see the module docstring)."""
    if not hasattr(client, "_retry") or not hasattr(client, "_session"):
        raise RuntimeError("this alpaca-py version has no _retry/_session; update alpaca_clients")
    client._retry = 0
    client._session = _TimeoutSession(timeout)
    return client


def is_live(settings: Settings) -> bool:
    return settings.effective_mode == "live"


def trading_client(settings: Settings, timeout: float = 15.0) -> Any:
    from alpaca.trading.client import TradingClient

    a = settings.alpaca
    client = TradingClient(str(a.key_id), str(a.secret_key), paper=not is_live(settings),
                           url_override=a.trading_url or None)
    return harden(client, timeout)


def data_client(settings: Settings, timeout: float = 30.0) -> Any:
    from alpaca.data.historical import StockHistoricalDataClient

    a = settings.alpaca
    # raw_data: plain dicts, not one pydantic model per bar (a year is ~250k bars).
    client = StockHistoricalDataClient(str(a.key_id), str(a.secret_key), raw_data=True,
                                       url_override=a.data_url or None)
    return harden(client, timeout)


def trading_base_url(settings: Settings) -> str:
    if settings.alpaca.trading_url:
        return settings.alpaca.trading_url
    return LIVE_TRADING_URL if is_live(settings) else PAPER_TRADING_URL


def trade_stream_url(settings: Settings) -> str:
    if settings.alpaca.trade_stream_url:
        return settings.alpaca.trade_stream_url
    return LIVE_TRADE_STREAM if is_live(settings) else PAPER_TRADE_STREAM


def data_stream_url(settings: Settings) -> str:
    return settings.alpaca.stream_url or DATA_STREAM.format(feed=settings.alpaca.feed)


def api_error_status(e: BaseException) -> int | None:
    """HTTP status of an alpaca-py ``APIError`` (None for network errors)."""
    try:
        return getattr(e, "status_code", None)
    except Exception:
        return None


def api_error_message(e: BaseException) -> str:
    """The ``message`` of an Alpaca error body (trading and data bodies differ), else str(e)."""
    import json

    text = str(e)
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return text


def api_error_code(e: BaseException) -> int | None:
    import json

    try:
        body = json.loads(str(e))
        return int(body["code"]) if isinstance(body, dict) and "code" in body else None
    except (ValueError, TypeError):
        return None


def retry_after(e: BaseException, default: float) -> float:
    """Seconds to wait after a 429: Alpaca's ``X-RateLimit-Reset`` (epoch) if sent."""
    import time

    resp = getattr(e, "response", None)
    headers = getattr(resp, "headers", None) or {}
    reset = headers.get("X-RateLimit-Reset") if hasattr(headers, "get") else None
    if reset:
        try:
            return max(0.0, min(float(reset) - time.time(), 120.0))
        except ValueError:
            pass
    retry = headers.get("Retry-After") if hasattr(headers, "get") else None
    if retry:
        try:
            return max(0.0, min(float(retry), 120.0))
        except ValueError:
            pass
    return default
