"""A minimal RFC 6455 server side for the emulator, on top of ``http.server``.

Why our own: the emulator serves REST and both websockets on ONE loopback port from one
``ThreadingHTTPServer`` and needs raw control of the socket to inject faults (drop a connection
mid-message, go silent). No compression is negotiated (the client's permessage-deflate offer is
simply not accepted, which RFC 7692 allows).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
import struct
import threading
from typing import BinaryIO

logger = logging.getLogger(__name__)

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(client_key: str) -> str:
    digest = hashlib.sha1((client_key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


class ConnectionClosed(Exception):
    pass


class WSConnection:
    """One upgraded connection. ``send_*`` may be called from any thread."""

    def __init__(self, sock: socket.socket, rfile: BinaryIO) -> None:
        self.sock = sock
        self.rfile = rfile
        self._send_lock = threading.Lock()
        self.closed = False
        self.answer_pings = lambda: True  # a fault switch: False = pings go unanswered

    # --- sending ----------------------------------------------------------------------------
    def _frame(self, opcode: int, payload: bytes) -> bytes:
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack("!H", n)
        else:
            head += bytes([127]) + struct.pack("!Q", n)
        return head + payload

    def send(self, opcode: int, payload: bytes, ping_after: bool = False) -> None:
        """One frame; ``ping_after`` adds a ping frame in the same write, so the client finds
        a control frame waiting right behind the data (as a server's keep-alive ping can)."""
        if self.closed:
            raise ConnectionClosed()
        data = self._frame(opcode, payload)
        if ping_after:
            data += self._frame(OP_PING, b"keepalive")
        try:
            with self._send_lock:
                self.sock.sendall(data)
        except OSError as e:
            self.closed = True
            raise ConnectionClosed() from e

    def send_text(self, text: str) -> None:
        self.send(OP_TEXT, text.encode("utf-8"))

    def send_binary(self, data: bytes) -> None:
        self.send(OP_BINARY, data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """A polite close frame, then the socket is shut."""
        if not self.closed:
            try:
                self.send(OP_CLOSE, struct.pack("!H", code) + reason.encode("utf-8")[:120])
            except ConnectionClosed:
                pass
        self.abort()

    def abort(self) -> None:
        """Cut the TCP connection without a close frame (a dropped network)."""
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- receiving --------------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        buf = self.rfile.read(n)
        if buf is None or len(buf) < n:
            raise ConnectionClosed()
        return buf

    def _read_frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = self._read(2)
        fin, opcode = bool(b0 & 0x80), b0 & 0x0F
        masked, n = bool(b1 & 0x80), b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        mask = self._read(4) if masked else b""
        payload = self._read(n) if n else b""
        if masked:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return fin, opcode, payload

    def recv(self) -> tuple[int, bytes]:
        """The next whole data message as (opcode, payload); answers pings on the way.

        Raises ``ConnectionClosed`` when the peer closes or the socket drops."""
        parts: list[bytes] = []
        first_op = None
        while True:
            try:
                fin, opcode, payload = self._read_frame()
            except (OSError, ValueError) as e:
                self.closed = True
                raise ConnectionClosed() from e
            if opcode == OP_PING:
                if self.answer_pings():
                    self.send(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode == OP_CLOSE:
                self.close(1000)
                raise ConnectionClosed()
            if opcode != OP_CONT:
                first_op = opcode
            parts.append(payload)
            if fin:
                return (first_op or OP_TEXT), b"".join(parts)
