"""The control socket: a Unix-domain socket only the owner can open.

``<data folder>/control/autotrader.sock``: the folder is 0700 and the socket 0600, and on
Linux the peer's uid (SO_PEERCRED) must be this process's. One JSON object per line each way;
a connection may carry several requests. Requests are served one at a time on one thread,
each bounded by the engine's own sub-second answers.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import struct
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the command line's side imports this module: no engine (numpy, DBs) here
    from app.control.service import ControlService

logger = logging.getLogger(__name__)

SOCKET_DIR = "control"
SOCKET_NAME = "autotrader.sock"
MAX_LINE = 64 * 1024
CLIENT_TIMEOUT = 10.0  # seconds an idle client keeps the channel
# sun_path holds 108 bytes on Linux, 104 on macOS (with the terminating NUL).
MAX_PATH = 103


class ControlUnavailable(OSError):
    pass


def socket_path(data_path: Path) -> Path:
    return Path(data_path) / SOCKET_DIR / SOCKET_NAME


def check_path(path: Path) -> None:
    if len(os.fsencode(str(path))) > MAX_PATH:
        raise ControlUnavailable(
            f"the control socket path {path} is longer than {MAX_PATH} bytes (a limit of "
            "Unix sockets): use a shorter data folder")


def _private_dir(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise ControlUnavailable(f"{folder} is not a folder of this user")
    if stat.S_IMODE(st.st_mode) != 0o700:
        folder.chmod(0o700)


def peer_uid(conn: socket.socket) -> int | None:
    """The connecting process's uid (Linux), None where the OS does not tell."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if opt is None or not sys.platform.startswith("linux"):
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


class ControlServer:
    def __init__(self, service: ControlService, path: Path) -> None:
        self.service = service
        self.path = Path(path)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def start(self) -> ControlServer:
        check_path(self.path)
        _private_dir(self.path.parent)
        if self.path.exists() or self.path.is_symlink():
            # The caller holds the data folder's single-instance lock: a socket left here is
            # a dead process's.
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(8)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="control-server", daemon=True)
        self._thread.start()
        logger.info("control channel listening on %s", self.path)
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._closed.is_set():
                    return
                logger.exception("control channel: accept failed")
                continue
            try:
                self._session(conn)
            except Exception:  # noqa: BLE001 - one client must not end the channel
                logger.exception("control channel: a session failed")
            finally:
                conn.close()

    def _session(self, conn: socket.socket) -> None:
        uid = peer_uid(conn)
        if uid is not None and uid != os.getuid():
            logger.warning("control channel: refused a connection from uid %d", uid)
            return
        conn.settimeout(CLIENT_TIMEOUT)
        f = conn.makefile("rwb")
        while not self._closed.is_set():
            try:
                line = f.readline(MAX_LINE + 1)
            except (TimeoutError, OSError):
                return
            if not line:
                return
            if len(line) > MAX_LINE:
                self._reply(f, {"ok": False, "error": "request too long"})
                return
            try:
                req: Any = json.loads(line)
            except ValueError:
                answer = {"ok": False, "error": "a request is one JSON object per line"}
            else:
                answer = self.service.handle(req)
            if not self._reply(f, answer):
                return

    @staticmethod
    def _reply(f: Any, answer: dict[str, Any]) -> bool:
        try:
            f.write(json.dumps(answer, default=str).encode() + b"\n")
            f.flush()
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self._sock is not None:
            self._sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        try:
            self.path.unlink()
        except OSError:
            pass
        logger.info("control channel closed")


def start_control(engine: Any, data_path: Path) -> ControlServer | None:
    """Start the running app's control channel; closed with the engine. A channel that cannot
    start is logged and the app runs on without it."""
    if not hasattr(socket, "AF_UNIX"):
        logger.warning("no control channel on this platform (no Unix sockets)")
        return None
    from app.control.service import ControlService

    try:
        server = ControlServer(ControlService(engine), socket_path(data_path)).start()
    except OSError as e:
        logger.error("control channel not started: %s", e)
        return None
    engine.call_on_close(server.close)
    return server
