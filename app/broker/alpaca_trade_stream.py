"""Alpaca's trade-updates websocket (``/stream``) on websocket-client, in its own thread.

Authenticate, listen to ``trade_updates``, hand each event's ``data`` to a callback. A dropped
connection is retried with exponential backoff and jitter; a refused login waits
``auth_retry`` (alpaca-py's own TradingStream retries every ~10 ms, which caused 429 storms).
Events missed while disconnected are not replayed by Alpaca: the broker's polling covers them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
from collections.abc import Callable

import websocket

logger = logging.getLogger(__name__)

EventCallback = Callable[[dict], None]


class TradeUpdatesStream:
    def __init__(self, url: str, key_id: str, secret_key: str, on_event: EventCallback, *,
                 connect_timeout: float = 10.0, recv_timeout: float = 1.0,
                 backoff_base: float = 1.0, backoff_max: float = 60.0,
                 auth_retry: float = 300.0) -> None:
        self.url = url
        self._key_id, self._secret_key = key_id, secret_key
        self._on_event = on_event
        self.connect_timeout, self.recv_timeout = connect_timeout, recv_timeout
        self.backoff_base, self.backoff_max, self.auth_retry = backoff_base, backoff_max, auth_retry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws: websocket.WebSocket | None = None
        self._connected = threading.Event()
        self.state = "stopped"
        self.detail = ""
        self.connects = 0
        self._rng = random.Random()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alpaca-trade-updates", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.abort()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._connected.clear()
        self.state = "stopped"

    def _set(self, state: str, detail: str = "") -> None:
        if (state, detail) != (self.state, self.detail):
            (logger.warning if state in ("error", "reconnecting") else logger.info)(
                "trade updates: %s%s", state, f" ({detail})" if detail else "")
        self.state, self.detail = state, detail

    def _recv(self, ws: websocket.WebSocket) -> dict:
        data = ws.recv()
        if not data:
            raise ConnectionError("closed by server")
        return json.loads(data)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            ws = None
            try:
                ws = websocket.create_connection(self.url, timeout=self.connect_timeout)
                self._ws = ws
                ws.send(json.dumps({"action": "authenticate", "data": {
                    "key_id": self._key_id, "secret_key": self._secret_key}}))
                reply = self._recv(ws)
                status = (reply.get("data") or {}).get("status")
                if status != "authorized":
                    self._set("error", "Alpaca refused the API keys on the trade-updates stream")
                    self._close(ws)
                    self._stop.wait(self.auth_retry)
                    continue
                ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
                self.connects += 1
                attempt = 0
                ws.settimeout(self.recv_timeout)
                while not self._stop.is_set():
                    try:
                        msg = self._recv(ws)
                    except websocket.WebSocketTimeoutException:
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
            except (websocket.WebSocketException, OSError, ValueError, ConnectionError) as e:
                reason = f"{type(e).__name__}: {e}"
            except Exception as e:
                logger.exception("trade updates: unexpected error")
                reason = f"{type(e).__name__}: {e}"
            else:
                reason = "stopped"
            self._connected.clear()
            self._close(ws)
            if self._stop.is_set():
                break
            delay = min(self.backoff_max, self.backoff_base * 2 ** attempt)
            delay *= 0.5 + 0.5 * self._rng.random()
            attempt += 1
            self._set("reconnecting", f"{reason}; retry in {delay:.1f} s")
            self._stop.wait(delay)
        self._set("stopped")

    def _close(self, ws: websocket.WebSocket | None) -> None:
        self._ws = None
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close(timeout=0.2)

