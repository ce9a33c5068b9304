"""One logging set-up: console plus a rotating file, secrets scrubbed from every record."""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import sys
from pathlib import Path

LOG_FORMAT = "%(asctime)s - %(levelname)s - %(name)s - %(message)s"
LOG_FILENAME = "autotrader.log"

_secrets: set[str] = set()
# Alpaca keys: paper keys start PK, live AK, then 16+ upper-case letters/digits.
_KEY_PATTERN = re.compile(r"\b(PK|AK)[A-Z0-9]{16,}\b")


def register_secret(value: str) -> None:
    """Never let ``value`` appear in a log line."""
    if value and len(value) >= 4:
        _secrets.add(value)


def scrub(text: str) -> str:
    for s in _secrets:
        if s in text:
            text = text.replace(s, "****")
    return _KEY_PATTERN.sub("****", text)


class SecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = scrub(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """The log (and each rotated one) is readable by its owner only (0600): it holds the
    trading history."""

    _failing = False
    _ok = True

    def _open(self):  # type: ignore[no-untyped-def]
        stream = super()._open()
        try:
            os.chmod(self.baseFilename, 0o600)
        except OSError:
            pass
        return stream

    def emit(self, record: logging.LogRecord) -> None:
        was, self._ok = self._failing, True
        super().emit(record)  # handleError clears ``_ok``
        if was and self._ok:
            self._failing = False  # writing works again (space is back)
            sys.stderr.write(f"autotrader: the log file {self.baseFilename} is written "
                             "again\n")

    def handleError(self, record: logging.LogRecord) -> None:
        """A log line that cannot be written (a full disk) is said once on stderr, not as a
        traceback per line."""
        self._ok = False
        if self._failing:
            return
        self._failing = True
        e = sys.exc_info()[1]
        try:
            sys.stderr.write(f"autotrader: cannot write the log file {self.baseFilename} "
                             f"({e}); log lines go to the console only until it works\n")
        except Exception:
            pass


def setup_logging(level: str = "INFO", log_dir: Path | None = None, console: bool = True) -> Path | None:
    """Configure the root logger; return the log file's path (None if no file)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_autotrader", False):
            root.removeHandler(h)
            h.close()
    root.setLevel(level.upper())
    fmt = logging.Formatter(LOG_FORMAT)
    handlers: list[logging.Handler] = []
    if console:
        handlers.append(logging.StreamHandler())
    log_file = None
    if log_dir is not None:
        try:
            if not log_dir.exists():
                log_dir.mkdir(parents=True, mode=0o700)
            log_file = log_dir / LOG_FILENAME
            handlers.append(
                PrivateRotatingFileHandler(
                    log_file, maxBytes=5_000_000, backupCount=5, encoding="utf-8"
                )
            )
        except OSError as e:
            logging.getLogger(__name__).warning("cannot write logs to %s: %s", log_dir, e)
            log_file = None
    for h in handlers:
        h.setFormatter(fmt)
        h.addFilter(SecretFilter())
        h._autotrader = True  # type: ignore[attr-defined]
        root.addHandler(h)
    # Chatty libraries stay at WARNING unless we debug.
    if level.upper() != "DEBUG":
        for name in ("urllib3", "websocket", "matplotlib", "asyncio"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return log_file


def tail(path: Path, lines: int = 200) -> list[str]:
    """The last ``lines`` lines of a log file (for the settings screen)."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 200 * lines))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return data.splitlines()[-lines:]
