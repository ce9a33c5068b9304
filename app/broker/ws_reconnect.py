"""One reconnecting websocket thread, shared by Alpaca's two streams (market data in
``app.marketdata.stream``, trade updates in ``app.broker.alpaca_trade_stream``).

The thread repeats: open (connect, log in, subscribe: the subclass's ``_open``), serve (read
until the connection ends: ``_serve``), close. A connection that drops or fails to open is
retried after an exponential backoff with jitter (``backoff``: the pause of the one retry
policy, ``app.broker.retry.RetryPolicy``, jittered; it never gives up), reset by every good open. A
refusal from the server (keys, connection limit, plan) raises ``Refused`` with its own pause:
it is waited out once, never retried in a storm. While serving, ``_keep_alive`` pings every
``ping_interval`` and treats a missing pong after ``pong_timeout`` as a dead connection (a
path that died silently), and ``_recv_frame`` reads one frame, noting pongs. The hooks ``_connecting``, ``_on_open``,
``_refused``, ``_lost`` and ``_stopped`` let each stream report its state its own way.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from dataclasses import dataclass

import websocket

from app.broker.retry import RetryPolicy

logger = logging.getLogger(__name__)


class Dropped(Exception):
    """The connection ended or went silent; reconnect with backoff."""


class Refused(Exception):
    """The server refused us; retry only after ``wait`` seconds (``code``: the server's)."""

    def __init__(self, why: str, wait: float, code: int = 0) -> None:
        super().__init__(why)
        self.why, self.wait, self.code = why, wait, code


@dataclass
class Heartbeat:
    """Monotonic times of a read loop's last ping sent, pong seen and periodic check."""

    ping: float
    pong: float = 0.0
    check: float = 0.0

    def __post_init__(self) -> None:
        self.pong = self.check = self.ping


class ReconnectingWebSocket:
    """Base of a stream that keeps one websocket open in its own daemon thread."""

    thread_name = "websocket"

    def __init__(self, *, backoff_base: float, backoff_max: float, ping_interval: float = 20.0,
                 pong_timeout: float = 20.0) -> None:
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        # The pauses between reconnects: retry.py's exponential pause (base x 2^n, capped).
        # A stream never stops trying, so attempts and budget play no part here.
        self.policy = RetryPolicy(attempts=1, base=backoff_base, cap=backoff_max)
        self.ping_interval, self.pong_timeout = ping_interval, pong_timeout  # 0: no pings
        self._ws_lock = threading.Lock()  # held for every send on the socket
        self.pings_sent = 0
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
        """Exponential backoff with jitter in [d/2, d], d = the policy's pause (base x
        2^attempt, at most ``backoff_max``), so many clients never reconnect in step."""
        d = self.policy.pause(min(attempt, 62))
        return d * (0.5 + 0.5 * self._rng.random())

    # --- while serving ------------------------------------------------------------------------
    def _keep_alive(self, ws: websocket.WebSocket, beat: Heartbeat) -> None:
        """Ping every ``ping_interval``; no pong ``pong_timeout`` after a ping: ``Dropped``."""
        now = time.monotonic()
        if self.ping_interval and now - beat.ping >= self.ping_interval:
            late = now - beat.ping >= self.pong_timeout
            if beat.pong < beat.ping and late:
                raise Dropped(f"no pong for {now - beat.ping:.0f} s")
            if beat.pong >= beat.ping or late:
                with self._ws_lock:
                    ws.ping(b"at")
                self.pings_sent += 1
                beat.ping = now

    def _recv_frame(self, ws: websocket.WebSocket, beat: Heartbeat) -> bytes | str | None:
        """The next data frame's payload; None for a control frame or a read timeout (the
        socket's timeout). Raises ``Dropped`` when the connection ends."""
        try:
            opcode, frame = ws.recv_data_frame(True)
        except websocket.WebSocketTimeoutException:
            return None
        except (websocket.WebSocketConnectionClosedException, OSError) as e:
            raise Dropped(f"{type(e).__name__}: {e}") from None
        if opcode == websocket.ABNF.OPCODE_PONG:
            beat.pong = time.monotonic()
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise Dropped("closed by server")
        if opcode == websocket.ABNF.OPCODE_PING:  # websocket-client has answered it
            return None
        return frame.data or None

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
