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

    def request(self, method: str, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
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


def corporate_actions_client(settings: Settings, timeout: float = 30.0) -> Any:
    """alpaca-py's ``CorporateActionsClient`` (data API ``/v1/corporate-actions``)."""
    from alpaca.data.historical.corporate_actions import CorporateActionsClient

    a = settings.alpaca
    client = CorporateActionsClient(str(a.key_id), str(a.secret_key), raw_data=True,
                                    url_override=a.data_url or None)
    return harden(client, timeout)


# Alpaca's corporate-action groups -> (our kind, the symbol field it concerns, its date field).
# Splits and cash dividends are applied; the others pause the ticker's algorithms.
CORPORATE_GROUPS = {
    "forward_splits": ("forward_split", "symbol", "ex_date"),
    "reverse_splits": ("reverse_split", "symbol", "ex_date"),
    "cash_dividends": ("cash_dividend", "symbol", "ex_date"),
    "stock_dividends": ("stock_dividend", "symbol", "ex_date"),
    "unit_splits": ("unit_split", "old_symbol", "effective_date"),
    "spin_offs": ("spin_off", "source_symbol", "ex_date"),
    "cash_mergers": ("cash_merger", "acquiree_symbol", "effective_date"),
    "stock_mergers": ("stock_merger", "acquiree_symbol", "effective_date"),
    "stock_and_cash_mergers": ("stock_and_cash_merger", "acquiree_symbol", "effective_date"),
    "redemptions": ("redemption", "symbol", "process_date"),
    "name_changes": ("name_change", "old_symbol", "process_date"),
    "worthless_removals": ("worthless_removal", "symbol", "process_date"),
    "rights_distributions": ("rights_distribution", "source_symbol", "ex_date"),
}


def corporate_actions_from(raw: Any, symbols: set[str] | None = None) -> list[dict[str, Any]]:
    """Alpaca's corporate-actions answer (``{"forward_splits": [...], ...}``, raw dicts or
    alpaca-py models) -> our dicts ``{id, ticker, kind, ex_date, record_date, payable_date,
    old_rate, new_rate, rate, detail}``; groups we do not know are skipped (logged)."""
    data = getattr(raw, "data", raw) or {}
    out: list[dict[str, Any]] = []
    for group, items in data.items():
        spec = CORPORATE_GROUPS.get(group)
        if spec is None:
            logger.warning("corporate actions: unknown group %r skipped", group)
            continue
        kind, sym_field, date_field = spec
        for item in items or ():
            d = item if isinstance(item, dict) else item.model_dump()
            ticker = d.get(sym_field)
            day = d.get(date_field) or d.get("ex_date") or d.get("process_date")
            if not ticker or not day or (symbols is not None and ticker not in symbols):
                continue
            rate = d.get("rate", d.get("cash_rate"))
            out.append({
                "id": str(d.get("id")), "ticker": ticker, "kind": kind, "ex_date": str(day)[:10],
                "record_date": _day(d.get("record_date")),
                "payable_date": _day(d.get("payable_date")),
                "old_rate": _num(d.get("old_rate")), "new_rate": _num(d.get("new_rate")),
                "rate": _num(rate),
                "detail": {k: str(v) for k, v in d.items() if v is not None and k not in (
                    "id", "corporate_action_type")},
            })
    return out


def _day(x: Any) -> str | None:
    return None if x is None else str(x)[:10]


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


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
    """Alpaca's numeric error ``code`` (trading API bodies carry one; data API bodies do not)."""
    import json

    try:
        body = json.loads(str(e))
        return int(body["code"]) if isinstance(body, dict) and "code" in body else None
    except (ValueError, TypeError):
        return None


# Alpaca's code for a request it refused as invalid, a duplicate client_order_id included
# (HTTP 422 ``{"code": 40010001, "message": "client_order_id must be unique"}``). The same
# code covers other validation failures, so a 40010001 on an order is settled by looking the
# client order id up, never by reading the message.
INVALID_REQUEST_CODE = 40010001


def refusal_text(what: str, status: int | None, code: int | None, message: str,
                 data_api: bool = False) -> str:
    """Say why Alpaca refused a read, telling bad keys apart from a restricted account.

    Trading API: 401 means the keys were not accepted; 403 carries an error ``code`` and means
    the keys work but this account may not do it (restricted, blocked, closed). The data API
    answers 403 for both bad keys and a plan without the feed; its body has only a message."""
    if status == 401:
        return (f"Alpaca {what}: the API keys were not accepted (HTTP 401: {message}); check "
                "the key id and secret, and that they are paper keys for paper, live keys for live")
    if status == 403 and data_api:
        if "subscription" in message.lower():
            return (f"Alpaca {what}: the data plan does not cover this request (HTTP 403: "
                    f"{message}); use feed 'iex' or a plan with SIP data")
        return (f"Alpaca {what}: refused (HTTP 403: {message}); the keys are wrong or were "
                "reset (a paper-account reset makes new keys), or the plan lacks this feed")
    if status == 403 and code is not None:
        return (f"Alpaca {what}: the keys work but this account may not do this (HTTP 403, "
                f"code {code}: {message}); the account is restricted or blocked, see the "
                "Alpaca dashboard")
    if status == 403:
        return (f"Alpaca {what}: refused (HTTP 403: {message}); check the API keys and the "
                "account's status")
    return f"Alpaca {what}: HTTP {status}: {message}"


# Never wait less than this after a 429: X-RateLimit-Reset is Alpaca's clock, and a local clock
# running ahead would otherwise turn the wait into zero and the retries into a storm.
MIN_RATE_LIMIT_WAIT = 1.0
MAX_RATE_LIMIT_WAIT = 120.0


def retry_after(e: BaseException, default: float, minimum: float = MIN_RATE_LIMIT_WAIT,
                maximum: float = MAX_RATE_LIMIT_WAIT) -> float:
    """Seconds to wait after a 429.

    ``X-RateLimit-Reset`` is an epoch second on Alpaca's clock, so it is compared with the
    response's ``Date`` header (Alpaca's clock too) when sent, else with ours; the result is
    kept within [minimum, maximum] so a skewed local clock can neither spin nor stall us."""
    import time
    from email.utils import parsedate_to_datetime

    resp = getattr(e, "response", None)
    headers = getattr(resp, "headers", None) or {}
    get = headers.get if hasattr(headers, "get") else (lambda _k: None)
    wait: float | None = None
    reset = get("X-RateLimit-Reset")
    if reset:
        try:
            now = time.time()
            date = get("Date")
            if date:
                try:
                    now = parsedate_to_datetime(date).timestamp()
                except (TypeError, ValueError, IndexError):
                    pass
            wait = float(reset) - now
        except ValueError:
            wait = None
    if wait is None:
        retry = get("Retry-After")
        if retry:
            try:
                wait = float(retry)
            except ValueError:
                wait = None
    if wait is None:
        wait = default
    return max(minimum, min(wait, maximum))


# Feeds the historical bars endpoint takes for stocks. ``delayed_sip`` is a websocket feed
# (``/v2/delayed_sip``); its historical equivalent is ``sip`` without the newest 15 minutes
# (a plan without SIP gets 403 "subscription does not permit querying recent SIP data").
HISTORICAL_FEEDS = ("iex", "sip")
SIP_DELAY_SECONDS = 15 * 60


def historical_feed(feed: str) -> tuple[str, int]:
    """(feed for ``/v2/stocks/bars``, seconds of the newest data it may not return)."""
    if feed == "delayed_sip":
        return "sip", SIP_DELAY_SECONDS
    if feed not in HISTORICAL_FEEDS:
        raise ValueError(f"feed {feed!r} is not one of {', '.join(HISTORICAL_FEEDS)}")
    return feed, 0


SPLIT_TYPES = ("forward_split", "reverse_split")


def split_reader(settings: Settings, timeout: float = 30.0,
                 rate_limit_min: float = MIN_RATE_LIMIT_WAIT) -> Any:
    """``read(tickers, start, end)``: Alpaca's forward and reverse splits of ``tickers`` with
    dates in [start, end] (``GET /v1/corporate-actions?types=forward_split,reverse_split``
    through alpaca-py's CorporateActionsClient; docs.alpaca.markets/reference/
    corporateactions-1), as ``corporate_actions_from`` dicts. 429s and 5xx are retried
    under ``retry.READ_POLICY``, a 429 after its X-RateLimit-Reset; others are raised."""
    from datetime import date

    from alpaca.data.enums import CorporateActionsType
    from alpaca.data.requests import CorporateActionsRequest

    from app.broker import retry

    client = corporate_actions_client(settings, timeout)

    def transient(e: BaseException) -> bool:
        st = api_error_status(e)
        return st is None and isinstance(e, requests.RequestException) or \
            st is not None and (st == 429 or st >= 500)

    def pause(attempt: int, e: BaseException) -> float:
        if api_error_status(e) == 429:
            return retry_after(e, 30.0, minimum=rate_limit_min)
        return retry.READ_POLICY.pause(attempt)

    def read(tickers: list[str], start: date, end: date) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(tickers), 100):  # keep each query string short
            req = CorporateActionsRequest(
                symbols=list(tickers[i:i + 100]), start=start, end=end,
                types=[CorporateActionsType(t) for t in SPLIT_TYPES])
            raw = retry.call(lambda r=req: client.get_corporate_actions(r),  # type: ignore[misc]
                             retry.READ_POLICY, transient=transient, pause_for=pause,
                             what="read splits")
            out.extend(corporate_actions_from(raw, set(tickers)))
        return out

    return read
