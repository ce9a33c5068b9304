"""One reconnecting websocket thread, shared by Alpaca's two streams (market data in
``app.marketdata.stream``, trade updates in ``app.broker.alpaca_trade_stream``).

The thread repeats: open (connect, log in, subscribe: the subclass's ``_open``), serve (read
until the connection ends: ``_serve``), close. A connection that drops or fails to open is
retried after an exponential backoff with jitter (``backoff``), reset by every good open. A
refusal from the server (keys, connection limit, plan) raises ``Refused`` with its own pause:
it is waited out once, never retried in a storm. The hooks ``_connecting``, ``_on_open``,
``_refused``, ``_lost`` and ``_stopped`` let each stream report its state its own way.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading

import websocket

logger = logging.getLogger(__name__)


class Dropped(Exception):
    """The connection ended or went silent; reconnect with backoff."""


class Refused(Exception):
    """The server refused us; retry only after ``wait`` seconds (``code``: the server's)."""

    def __init__(self, why: str, wait: float, code: int = 0) -> None:
        super().__init__(why)
        self.why, self.wait, self.code = why, wait, code


class ReconnectingWebSocket:
    """Base of a stream that keeps one websocket open in its own daemon thread."""

    thread_name = "websocket"

    def __init__(self, *, backoff_base: float, backoff_max: float) -> None:
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws: websocket.WebSocket | None = None
        self._rng = random.Random()
        self.connects = 0  # good opens so far

    # --- to be provided by the stream -------------------------------------------------------
    def _open(self) -> websocket.WebSocket:
        """Connect, log in and subscribe; raise ``Refused``/``Dropped`` (or the socket's
        errors) when that fails, closing what was opened."""
        raise NotImplementedError

    def _serve(self, ws: websocket.WebSocket) -> None:
        """Read until the connection ends (raise) or ``_stop`` is set (return)."""
        raise NotImplementedError

    def _connecting(self, attempt: int) -> None:
        """Before each open (``attempt`` failures since the last good one)."""

    def _on_open(self, ws: websocket.WebSocket) -> None:
        """After a good open (``connects`` already counts it), before ``_serve``."""

    def _refused(self, e: Refused) -> None:
        """The server refused us; ``e.wait`` seconds of pause follow."""

    def _lost(self, reason: str, delay: float) -> None:
        """The connection failed or dropped; the next try is in ``delay`` seconds."""

    def _stopped(self) -> None:
        """The thread is ending (``stop``)."""

    # --- the thread -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread: the current socket is cut so a blocked read returns at once."""
        self._stop.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.abort()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter in [d/2, d], d = base x 2^attempt <= max."""
        d = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        return d * (0.5 + 0.5 * self._rng.random())

    def _close(self, ws: websocket.WebSocket | None) -> None:
        if self._ws is ws:
            self._ws = None
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close(timeout=0.2)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._connecting(attempt)
            ws = None
            try:
                ws = self._open()
                self.connects += 1
                attempt = 0
                self._on_open(ws)
                self._serve(ws)
                reason = "connection ended"
            except Refused as e:
                self._close(ws)
                self._refused(e)
                self._stop.wait(e.wait)
                continue
            except Dropped as e:
                reason = str(e)
            except (websocket.WebSocketException, OSError, ValueError) as e:
                reason = f"{type(e).__name__}: {e}"
            except Exception as e:  # never let the thread die silently
                logger.exception("%s: unexpected error", self.thread_name)
                reason = f"{type(e).__name__}: {e}"
            self._close(ws)
            if self._stop.is_set():
                break
            delay = self.backoff(attempt)
            attempt += 1
            self._lost(reason, delay)
            self._stop.wait(delay)
        self._stopped()
