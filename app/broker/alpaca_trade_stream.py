"""Alpaca's trade-updates websocket (``/stream``) on websocket-client, in its own thread.

Authenticate, listen to ``trade_updates``, hand each event's ``data`` to a callback. A dropped
connection is retried with exponential backoff and jitter; a refused login waits
``auth_retry`` (alpaca-py's own TradingStream retries every ~10 ms, which caused 429 storms).
The reconnect loop is ``app.broker.ws_reconnect``, shared with the market-data stream, its
pauses from the one retry policy (``app.broker.retry``). Events missed while disconnected are
not replayed by Alpaca (docs.alpaca.markets/docs/websocket-streaming offers no replay; it has
clients keep their state "along with requesting from the REST API"), so every reconnect calls
``on_reconnect``: the broker then asks Alpaca about its open orders at once instead of waiting
for its slow poll of a quiet order.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypedDict

import websocket

from app.broker.ws_reconnect import Dropped, Heartbeat, ReconnectingWebSocket, Refused

logger = logging.getLogger(__name__)



class TradeUpdateEvent(TypedDict, total=False):
    """The ``data`` of a ``trade_updates`` message as Alpaca sends it (decoded JSON, checked
    by the receiver): the event's name and the order as Alpaca's order JSON."""

    event: str
    order: dict[str, Any]


EventCallback = Callable[[TradeUpdateEvent], None]


class TradeUpdatesStream(ReconnectingWebSocket):
    thread_name = "alpaca-trade-updates"

    def __init__(self, url: str, key_id: str, secret_key: str, on_event: EventCallback, *,
                 connect_timeout: float = 10.0, recv_timeout: float = 1.0,
                 backoff_base: float = 1.0, backoff_max: float = 60.0,
                 auth_retry: float = 300.0, ping_interval: float = 20.0,
                 pong_timeout: float = 20.0,
                 on_reconnect: Callable[[], None] | None = None) -> None:
        super().__init__(backoff_base=backoff_base, backoff_max=backoff_max,
                         ping_interval=ping_interval, pong_timeout=pong_timeout)
        self.url = url
        self._key_id, self._secret_key = key_id, secret_key
        self._on_event = on_event
        self.connect_timeout, self.recv_timeout = connect_timeout, recv_timeout
        self.auth_retry = auth_retry
        self._on_reconnect = on_reconnect
        self._connected = threading.Event()
        self.state = "stopped"
        self.detail = ""

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def stop(self) -> None:
        super().stop()
        self._connected.clear()
        self.state = "stopped"

    def _set(self, state: str, detail: str = "") -> None:
        if (state, detail) != (self.state, self.detail):
            (logger.warning if state in ("error", "reconnecting") else logger.info)(
                "trade updates: %s%s", state, f" ({detail})" if detail else "")
        self.state, self.detail = state, detail

    def _recv(self, ws: websocket.WebSocket) -> dict[str, Any]:
        data = ws.recv()
        if not data:
            raise Dropped("closed by server")
        reply: dict[str, Any] = json.loads(data)  # the authorization reply, an object
        return reply

    # --- ReconnectingWebSocket hooks --------------------------------------------------------
    def _open(self) -> websocket.WebSocket:
        ws = websocket.create_connection(self.url, timeout=self.connect_timeout)
        self._ws = ws
        try:
            ws.send(json.dumps({"action": "authenticate", "data": {
                "key_id": self._key_id, "secret_key": self._secret_key}}))
            reply = self._recv(ws)
            if (reply.get("data") or {}).get("status") != "authorized":
                raise Refused("Alpaca refused the API keys on the trade-updates stream",
                              self.auth_retry)
            ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        except BaseException:
            self._close(ws)
            raise
        return ws

    def _serve(self, ws: websocket.WebSocket) -> None:
        """Events until the connection drops; pings as the market stream does, so a trade
        stream that died silently is replaced (fills would otherwise wait for the polling)."""
        ws.settimeout(self.recv_timeout)
        beat = Heartbeat(time.monotonic())
        while not self._stop.is_set():
            self._keep_alive(ws, beat)
            data = self._recv_frame(ws, beat)
            if data is None:
                continue
            try:
                msg = json.loads(data)
            except ValueError:
                logger.warning("trade updates: unreadable message skipped: %.200r", data)
                continue
            if not isinstance(msg, dict):
                continue
            stream = msg.get("stream")
            if stream == "listening":
                self._connected.set()
                self._set("connected")
            elif stream == "trade_updates":
                try:
                    self._on_event(msg.get("data") or {})
                except Exception:
                    logger.exception("trade update handler failed")

    def _on_open(self, ws: websocket.WebSocket) -> None:
        """A reconnect (not the first open): what happened meanwhile must be asked for."""
        if self.connects > 1 and self._on_reconnect is not None:
            try:
                self._on_reconnect()
            except Exception:
                logger.exception("trade updates: reconnect handler failed")

    def _refused(self, e: Refused) -> None:
        self._set("error", e.why)

    def _lost(self, reason: str, delay: float) -> None:
        self._connected.clear()
        self._set("reconnecting", f"{reason}; retry in {delay:.1f} s")

    def _stopped(self) -> None:
        self._connected.clear()
        self._set("stopped")
