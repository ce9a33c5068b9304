"""The kiosk's "first frame shown" marker, for the upgrade's health check.

The kiosk unit sets ``AUTOTRADER_READY_FILE=/run/autotrader/ready``; the window writes that
file once, right after its first frame has rendered (``app/ui/app.py``). ``pi-upgrade.sh``
starts the new version and waits for a marker written from the new venv; no marker in time
means the new version does not come up on the screen, and the upgrade rolls back.

The file is a few ``key=value`` lines (read by the shell script with ``sed``)::

    pid=1234
    prefix=/opt/autotrader/venvs/0.2.0-abc1234-20261202T071500Z
    version=0.2.0
    time=2026-12-02T07:15:09Z

``/run/autotrader`` is the unit's RuntimeDirectory: systemd removes it when the service
stops, so a marker never outlives the process that wrote it. Qt-free.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ENV = "AUTOTRADER_READY_FILE"


def marker_text(version: str, *, pid: int | None = None, prefix: str | None = None,
                now: float | None = None) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
    return (f"pid={os.getpid() if pid is None else pid}\n"
            f"prefix={os.path.realpath(sys.prefix) if prefix is None else prefix}\n"
            f"version={version}\ntime={stamp}\n")


def write_ready(path: str | Path, version: str | None = None) -> bool:
    """Write the marker atomically; False (and a log line) when it cannot be written: the
    marker is for the upgrade's check, never a reason for the app to stop."""
    import logging

    if version is None:
        from app import __version__

        version = __version__
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        tmp.write_text(marker_text(version), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as e:
        logging.getLogger(__name__).warning("cannot write the first-frame marker %s: %s",
                                            target, e)
        return False
    logging.getLogger(__name__).info("first frame shown (marker %s)", target)
    return True


def read_ready(path: str | Path) -> dict[str, str]:
    """The marker's fields ({} when there is none or it cannot be read)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out
