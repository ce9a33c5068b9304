"""The command line's side of the control channel."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from app.control.server import ControlUnavailable, check_path, socket_path

TIMEOUT = 30.0


class ControlClient:
    """One connection to the running app; ``None`` from ``connect`` when it is not running."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._f = sock.makefile("rwb")

    @classmethod
    def connect(cls, data_path: Path, timeout: float = TIMEOUT) -> ControlClient | None:
        path = socket_path(data_path)
        check_path(path)
        if not path.exists():
            return None
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            s.close()
            return None  # a socket file left by a process that died
        except PermissionError as e:
            s.close()
            raise ControlUnavailable(f"the control channel {path} is not yours: {e}") from None
        return cls(s)

    def request(self, req: dict[str, Any]) -> dict[str, Any]:
        self._f.write(json.dumps(req).encode() + b"\n")
        self._f.flush()
        line = self._f.readline()
        if not line:
            raise ControlUnavailable("the app closed the control channel")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise ControlUnavailable("the app answered something else than an object")
        return answer

    def close(self) -> None:
        try:
            self._f.close()
        finally:
            self._sock.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
